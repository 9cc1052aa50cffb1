import { Logger } from '@nestjs/common';
import type { Clock, ClockSkew } from '@app/clock';
import type { Redis, Cluster } from 'ioredis';
import { RedisKeys } from './redis-keys';
import { EXPIRY_TIE_MS } from './later-token';
import { TokenCipher, TokenDecryptionError } from './token-cipher';
import { tokenSha256 } from './token-sha256';
import {
  StoreUnavailableError,
  type ClientRef,
  type RefreshLock,
  type StoredToken,
  type TokenRef,
  type TokenStore,
} from './token-store';

/** Two expiries this close (ms) are the same expiry to the fenced write. */
export const FENCE_TIE_MS = EXPIRY_TIE_MS;

/**
 * Redis's own clock, in ms, inside a script: the one clock every replica's writes are compared
 * on (README "Which clock decides what"). Scripts that read TIME and then write replicate their
 * effects, not the script (the default since Redis 5; the call is for older servers).
 */
const REDIS_NOW_MS = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * The fenced write: one script, so the check and the write are atomic. It refuses to replace
 * a token that expires at the same time or later, so a replica that stalled past its lock
 * cannot put an older token back, and it refuses a revoked token. Expiries are compared in
 * Redis's time: the writer sends only the token's remaining life (ARGV[3], measured on its
 * monotonic clock from when its request was sent) and the script stamps `TIME + remaining life`
 * in front of the value, `<expiry in Redis ms>|<envelope>|<shape>`, so no replica's wall clock
 * enters it. The shape is not secret and is authenticated as associated data of the ciphertext.
 * The fence compares expiries across shapes (ARGV[4], a value this replica found unreadable,
 * does not count): during a rollout the later token holds the slot, and a replica of the other
 * configuration keeps its own copy (see README "Rollouts"). Expiries measured by two replicas
 * through the network agree only to within the writes' latency, so within FENCE_TIE_MS they are
 * a tie, and a tie keeps the held token (no churn between equals).
 *
 * A write can reach Redis late (a stalled process, a held connection): counted from its
 * arrival, the remaining life would be too long by the delay. So the writer also sends when it
 * sent the write, in Redis's time as well as it knows it (ARGV[6]: its wall clock corrected by
 * its measured skew; '' when not measured), and the life counts from the earlier of that and
 * TIME: a good estimate removes the delay, a bad one can only shorten the life, never lengthen
 * it. A write whose token died on the way is refused. Returns 1 when written.
 */
const FENCED_PUT =
  REDIS_NOW_MS +
  `
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
local sentMs = nowMs
if ARGV[6] ~= '' and tonumber(ARGV[6]) < nowMs then sentMs = tonumber(ARGV[6]) end
local expiry = sentMs + tonumber(ARGV[3])
local px = expiry - nowMs
if px <= 0 then return 0 end
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[4] then
  local sep = string.find(current, '|', 1, true)
  local currentExpiry = sep and tonumber(string.sub(current, 1, sep - 1))
  if currentExpiry and currentExpiry >= expiry - tonumber(ARGV[5]) then return 0 end
end
redis.call('SET', KEYS[1], tostring(expiry) .. ARGV[1], 'PX', px)
return 1
`;

/**
 * A read of the value and its remaining life (PTTL) in one step: the reader keeps its copy
 * against its own monotonic clock from there, never against an absolute time another host wrote.
 */
const READ_WITH_TTL = `
return { redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]) }
`;

/**
 * Revocation: record the token's digest until it expires (ARGV[3]: its remaining life; the
 * hash lives as long as its longest entry) and remove the stored value when it is that token (compare and delete).
 */
const REVOKE =
  REDIS_NOW_MS +
  `
redis.call('HSET', KEYS[2], ARGV[1], tostring(nowMs + tonumber(ARGV[3])))
local ttl = redis.call('PTTL', KEYS[2])
if ttl < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
if ARGV[4] ~= '' and redis.call('GET', KEYS[1]) == ARGV[4] then redis.call('DEL', KEYS[1]) end
return 1
`;

/** Lock take: SET NX PX; a lock key left without a TTL (by hand, or a bug) is given one. */
const ACQUIRE_LOCK = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Lock release and extension: only by the owner that took it (compare and act, atomically). */
const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
const EXTEND_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

interface SealedFields {
  a: string; // access token
  s?: string; // scope
}

type RedisLike = (Redis | Cluster) & {
  fencedPut(
    key: string,
    revokedKey: string,
    valueAfterExpiry: string,
    sha: string,
    ttlMs: string,
    unreadable: string,
    tieMs: string,
    sentAtReference: string,
  ): Promise<number>;
  readWithTtl(key: string): Promise<[string | null, number]>;
  revokeToken(
    key: string,
    revokedKey: string,
    sha: string,
    unused: string,
    ttlMs: string,
    raw: string,
  ): Promise<number>;
  acquireLock(key: string, owner: string, ttlMs: string): Promise<number>;
  releaseLock(key: string, owner: string): Promise<number>;
  extendLock(key: string, owner: string, ttlMs: string): Promise<number>;
};

export class RedisTokenStore implements TokenStore, RefreshLock {
  readonly kind = 'redis';
  private readonly logger = new Logger('TokenStore');
  private readonly redis: RedisLike;
  readonly keys: RedisKeys;
  /** Unreadable values already reported (by key and value), so each is logged once. */
  private readonly reportedUnreadable = new Set<string>();
  /** Per token key, the last value found unreadable: the next write replaces it. */
  private readonly unreadable = new Map<string, string>();

  constructor(
    redis: Redis | Cluster,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    keyPrefix: string,
    /** This replica's measured skew against Redis (corrects late writes; see FENCED_PUT). */
    private readonly skew?: ClockSkew,
  ) {
    if (!('fencedPut' in redis) || !('readWithTtl' in redis)) {
      redis.defineCommand('fencedPut', { numberOfKeys: 2, lua: FENCED_PUT });
      redis.defineCommand('readWithTtl', { numberOfKeys: 1, lua: READ_WITH_TTL });
      redis.defineCommand('revokeToken', { numberOfKeys: 2, lua: REVOKE });
      redis.defineCommand('acquireLock', { numberOfKeys: 1, lua: ACQUIRE_LOCK });
      redis.defineCommand('releaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK });
      redis.defineCommand('extendLock', { numberOfKeys: 1, lua: EXTEND_LOCK });
    }
    this.redis = redis as RedisLike;
    this.keys = new RedisKeys(keyPrefix);
  }

  async get(ref: TokenRef): Promise<StoredToken | undefined> {
    // Taken before the read: the remaining life Redis reports is counted from a moment after
    // this, so the copy's expiry errs early, never late.
    const sentAt = this.clock.monotonic();
    const [raw, pttl] = await this.run(() => this.redis.readWithTtl(this.keys.token(ref)));
    if (raw === null || pttl <= 0) return undefined;
    const opened = this.open(ref, raw);
    if (!opened || opened.shape !== (ref.shape ?? '')) return undefined;
    // The authenticated lifetime caps a TTL set by hand: no token outlives what it was granted.
    const expiresAt = sentAt + Math.min(pttl, opened.lifetimeMs);
    if (expiresAt <= this.clock.monotonic()) return undefined;
    return { ...opened.token, requestedAt: expiresAt - opened.lifetimeMs, expiresAt };
  }

  async put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    // Before the first skew measurement (a write at start) one is taken here: without a send
    // time, a write that reaches Redis slowly would be stored longer than its token lives.
    if (this.skew && this.skew.offsetMs === undefined) await this.measureSkew(this.skew);
    const ttlMs = Math.floor(token.expiresAt - this.clock.monotonic());
    if (ttlMs <= 0) return false;
    const sentAt =
      this.skew?.offsetMs === undefined
        ? ''
        : String(Math.floor(this.skew.referenceNow(this.clock)));
    const written = await this.run(() =>
      this.redis.fencedPut(
        this.keys.token(ref),
        this.keys.revoked(ref),
        this.seal(ref, token),
        tokenSha256(token.accessToken),
        String(ttlMs),
        this.unreadable.get(this.keys.token(ref)) ?? '',
        String(FENCE_TIE_MS),
        sentAt,
      ),
    );
    if (written === 1) this.unreadable.delete(this.keys.token(ref));
    return written === 1;
  }

  async delete(ref: TokenRef): Promise<void> {
    await this.run(() => this.redis.del(this.keys.token(ref)));
  }

  async revoke(ref: ClientRef, sha: string, expiresAt: number): Promise<void> {
    const raw = await this.run(() => this.redis.get(this.keys.token(ref)));
    const opened = raw === null ? undefined : this.open(ref, raw);
    // Only the value that holds this very token is removed (a newer one stays).
    const match = opened && tokenSha256(opened.token.accessToken) === sha ? raw! : '';
    const ttlMs = Math.max(1, Math.ceil(expiresAt - this.clock.monotonic()));
    await this.run(() =>
      this.redis.revokeToken(
        this.keys.token(ref),
        this.keys.revoked(ref),
        sha,
        '',
        String(ttlMs),
        match,
      ),
    );
  }

  async isRevoked(ref: ClientRef, sha: string): Promise<boolean> {
    return (await this.run(() => this.redis.hexists(this.keys.revoked(ref), sha))) === 1;
  }

  async claimForcedRefresh(ref: ClientRef, intervalMs: number): Promise<boolean> {
    const result = await this.run(() =>
      this.redis.set(this.keys.forcedRefresh(ref), '1', 'PX', Math.ceil(intervalMs), 'NX'),
    );
    return result === 'OK';
  }

  async acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const result = await this.run(() =>
      this.redis.acquireLock(this.keys.lock(ref), owner, String(Math.ceil(ttlMs))),
    );
    return result === 1;
  }

  async extendLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    return (
      (await this.run(() =>
        this.redis.extendLock(this.keys.lock(ref), owner, String(Math.ceil(ttlMs))),
      )) === 1
    );
  }

  async releaseLock(ref: TokenRef, owner: string): Promise<void> {
    await this.run(() => this.redis.releaseLock(this.keys.lock(ref), owner));
  }

  async isLocked(ref: TokenRef): Promise<boolean> {
    return (await this.run(() => this.redis.exists(this.keys.lock(ref)))) === 1;
  }

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping());
  }

  /**
   * Wall minus Redis TIME, half the round trip allowed for; an answer slower than 100 ms
   * (CLOCK_SKEW_MAX_ROUND_TRIP_MS) is too uncertain to keep.
   */
  private async measureSkew(skew: ClockSkew): Promise<void> {
    const sentAt = this.clock.monotonic();
    const wall = this.clock.now();
    const reference = await this.referenceTime().catch(() => undefined);
    const roundTrip = this.clock.monotonic() - sentAt;
    if (reference !== undefined && roundTrip <= 100 && skew.offsetMs === undefined) {
      skew.record(wall + roundTrip / 2 - reference);
    }
  }

  async referenceTime(): Promise<number> {
    const [seconds, micros] = await this.run(() => this.redis.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /**
   * `|<lifetime ms>|<envelope>|<shape>`: the fenced write puts the expiry (in Redis time) in
   * front. The lifetime (from when the request was sent to the expiry; no clock's reading) is
   * authenticated with the shape as associated data.
   */
  private seal(ref: TokenRef, token: StoredToken): string {
    const shape = ref.shape ?? '';
    const lifetimeMs = Math.max(0, Math.round(token.expiresAt - token.requestedAt));
    const fields: SealedFields = { a: token.accessToken, s: token.scope };
    const envelope = this.cipher.encrypt(
      JSON.stringify(fields),
      associatedData(ref, lifetimeMs, shape),
    );
    return `|${lifetimeMs}|${envelope}|${shape}`;
  }

  /**
   * The stored token (times still to be set from the key's TTL), its lifetime and shape;
   * undefined (logged once) when the value is unreadable.
   */
  private open(
    ref: ClientRef,
    raw: string,
  ):
    | { token: Omit<StoredToken, 'requestedAt' | 'expiresAt'>; lifetimeMs: number; shape: string }
    | undefined {
    const first = raw.indexOf('|');
    const second = raw.indexOf('|', first + 1);
    const last = raw.lastIndexOf('|');
    try {
      const lifetimeMs = Number(raw.slice(first + 1, second));
      if (first <= 0 || second <= first || last <= second || !(lifetimeMs > 0)) {
        throw new TokenDecryptionError('unknown value format');
      }
      if (!Number.isSafeInteger(lifetimeMs)) throw new TokenDecryptionError('unknown value format');
      const shape = raw.slice(last + 1);
      const fields = JSON.parse(
        this.cipher.decrypt(raw.slice(second + 1, last), associatedData(ref, lifetimeMs, shape)),
      ) as SealedFields;
      if (typeof fields.a !== 'string') {
        throw new TokenDecryptionError('unknown value format');
      }
      return {
        shape,
        lifetimeMs,
        token: {
          accessToken: fields.a,
          tokenType: 'Bearer',
          scope: typeof fields.s === 'string' ? fields.s : undefined,
        },
      };
    } catch (e) {
      this.reportUnreadable(ref, raw, e);
      return undefined;
    }
  }

  /** Logged once per value: the next fenced write replaces it (it counts as absent). */
  private reportUnreadable(ref: ClientRef, raw: string, e: unknown): void {
    if (this.unreadable.size > 1000) this.unreadable.clear();
    this.unreadable.set(this.keys.token(ref), raw);
    const id = `${this.keys.token(ref)}\n${raw}`;
    if (this.reportedUnreadable.has(id)) return;
    if (this.reportedUnreadable.size > 1000) this.reportedUnreadable.clear();
    this.reportedUnreadable.add(id);
    this.logger.warn({
      msg: 'stored token unreadable; treated as absent until the next write replaces it',
      environment: ref.environment,
      clientId: ref.clientId,
      reason: e instanceof TokenDecryptionError ? e.message : 'unreadable value',
    });
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (e) {
      throw new StoreUnavailableError(`redis: ${(e as Error).message}`);
    }
  }
}

/**
 * Client, environment, lifetime and shape are bound in, so a value cannot be moved to another
 * key, be taken for a token of another configuration, nor be given a longer life. v3: values
 * of v2 (an absolute expiry from the writer's wall clock) count as unreadable and are replaced
 * by the next write (CHANGELOG).
 */
function associatedData(ref: ClientRef, lifetimeMs: number, shape: string): string {
  return `token-vendor/v3|${ref.environment}/${ref.clientId}|${lifetimeMs}|${shape}`;
}
