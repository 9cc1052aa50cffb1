import { Logger } from '@nestjs/common';
import type { Clock } from '@app/clock';
import type { Redis, Cluster } from 'ioredis';
import { RedisKeys } from './redis-keys';
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

/**
 * The fenced write: one script, so the check and the write are atomic. It refuses to replace
 * a token that expires at the same time or later, so a replica that stalled past its lock
 * cannot put an older token back, and it refuses a revoked token. The value is
 * `<expiresAt ms>|<envelope>|<shape>`: expiry and shape are not secret, are read by this script
 * and the reader, and are authenticated as associated data of the ciphertext. The fence
 * compares expiries across shapes (ARGV[5], a value this replica found unreadable, does not
 * count): during a rollout the later token holds the slot, and a
 * replica of the other configuration keeps its own copy (see README "Rollouts").
 */
const FENCED_PUT = `
if redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then return 0 end
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] then
  local sep = string.find(current, '|', 1, true)
  local currentExpiry = sep and tonumber(string.sub(current, 1, sep - 1))
  if currentExpiry and currentExpiry >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`;

/**
 * Revocation: record the token's digest until it expires (the hash lives as long as its
 * longest entry) and remove the stored value when it is that token (compare and delete).
 */
const REVOKE = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
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
  r: number; // requestedAt
}

type RedisLike = (Redis | Cluster) & {
  fencedPut(
    key: string,
    revokedKey: string,
    value: string,
    expiresAt: string,
    ttlMs: string,
    sha: string,
    unreadable: string,
  ): Promise<number>;
  revokeToken(
    key: string,
    revokedKey: string,
    sha: string,
    expiresAt: string,
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
  ) {
    if (!('fencedPut' in redis) || !('revokeToken' in redis)) {
      redis.defineCommand('fencedPut', { numberOfKeys: 2, lua: FENCED_PUT });
      redis.defineCommand('revokeToken', { numberOfKeys: 2, lua: REVOKE });
      redis.defineCommand('acquireLock', { numberOfKeys: 1, lua: ACQUIRE_LOCK });
      redis.defineCommand('releaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK });
      redis.defineCommand('extendLock', { numberOfKeys: 1, lua: EXTEND_LOCK });
    }
    this.redis = redis as RedisLike;
    this.keys = new RedisKeys(keyPrefix);
  }

  async get(ref: TokenRef): Promise<StoredToken | undefined> {
    const raw = await this.run(() => this.redis.get(this.keys.token(ref)));
    if (raw === null) return undefined;
    const opened = this.open(ref, raw);
    if (!opened || opened.shape !== (ref.shape ?? '')) return undefined;
    // Redis expires keys itself; this guards the millisecond between its TTL and ours.
    return opened.token.expiresAt > this.clock.now() ? opened.token : undefined;
  }

  async put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    const ttlMs = token.expiresAt - this.clock.now();
    if (ttlMs <= 0) return false;
    const written = await this.run(() =>
      this.redis.fencedPut(
        this.keys.token(ref),
        this.keys.revoked(ref),
        this.seal(ref, token),
        String(token.expiresAt),
        String(ttlMs),
        tokenSha256(token.accessToken),
        this.unreadable.get(this.keys.token(ref)) ?? '',
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
    const ttlMs = Math.max(1, expiresAt - this.clock.now());
    await this.run(() =>
      this.redis.revokeToken(
        this.keys.token(ref),
        this.keys.revoked(ref),
        sha,
        String(expiresAt),
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

  private seal(ref: TokenRef, token: StoredToken): string {
    const shape = ref.shape ?? '';
    const fields: SealedFields = { a: token.accessToken, s: token.scope, r: token.requestedAt };
    const envelope = this.cipher.encrypt(
      JSON.stringify(fields),
      associatedData(ref, token.expiresAt, shape),
    );
    return `${token.expiresAt}|${envelope}|${shape}`;
  }

  /** The stored token and its shape; undefined (logged once) when the value is unreadable. */
  private open(ref: ClientRef, raw: string): { token: StoredToken; shape: string } | undefined {
    const first = raw.indexOf('|');
    const last = raw.lastIndexOf('|');
    const expiresAt = Number(raw.slice(0, first));
    try {
      if (first <= 0 || last === first || !Number.isSafeInteger(expiresAt)) {
        throw new TokenDecryptionError('unknown value format');
      }
      const shape = raw.slice(last + 1);
      const fields = JSON.parse(
        this.cipher.decrypt(raw.slice(first + 1, last), associatedData(ref, expiresAt, shape)),
      ) as SealedFields;
      if (typeof fields.a !== 'string' || typeof fields.r !== 'number') {
        throw new TokenDecryptionError('unknown value format');
      }
      return {
        shape,
        token: {
          accessToken: fields.a,
          tokenType: 'Bearer',
          scope: typeof fields.s === 'string' ? fields.s : undefined,
          requestedAt: fields.r,
          expiresAt,
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
 * Client, environment, expiry and shape are bound in, so a value cannot be moved to another
 * key nor be taken for a token of another configuration.
 */
function associatedData(ref: ClientRef, expiresAt: number, shape: string): string {
  return `token-vendor/v2|${ref.environment}/${ref.clientId}|${expiresAt}|${shape}`;
}
