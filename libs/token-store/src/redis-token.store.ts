import type { Clock } from '@app/clock';
import type { Redis, Cluster } from 'ioredis';
import { RedisKeys } from './redis-keys';
import { TokenCipher, TokenDecryptionError } from './token-cipher';
import {
  StoreUnavailableError,
  type StoredToken,
  type TokenRef,
  type TokenStore,
} from './token-store';

/**
 * The fenced write: one script, so the check and the write are atomic. It refuses to replace
 * a token that expires at the same time or later, so a replica that stalled past its lock
 * cannot put an older token back. The value starts with the expiry in clear (`<ms>|...`),
 * which is not secret and is authenticated as associated data of the ciphertext.
 */
const FENCED_PUT = `
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, '|', 1, true)
  local currentExpiry = sep and tonumber(string.sub(current, 1, sep - 1))
  if currentExpiry and currentExpiry >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
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
  fencedPut(key: string, value: string, expiresAt: string, ttlMs: string): Promise<number>;
  releaseLock(key: string, owner: string): Promise<number>;
  extendLock(key: string, owner: string, ttlMs: string): Promise<number>;
};

export class RedisTokenStore implements TokenStore {
  readonly kind = 'redis';
  private readonly redis: RedisLike;
  private readonly keys: RedisKeys;

  constructor(
    redis: Redis | Cluster,
    private readonly cipher: TokenCipher,
    private readonly clock: Clock,
    keyPrefix: string,
  ) {
    if (!('fencedPut' in redis)) {
      redis.defineCommand('fencedPut', { numberOfKeys: 1, lua: FENCED_PUT });
      redis.defineCommand('releaseLock', { numberOfKeys: 1, lua: RELEASE_LOCK });
      redis.defineCommand('extendLock', { numberOfKeys: 1, lua: EXTEND_LOCK });
    }
    this.redis = redis as RedisLike;
    this.keys = new RedisKeys(keyPrefix);
  }

  async get(ref: TokenRef): Promise<StoredToken | undefined> {
    const raw = await this.run(() => this.redis.get(this.keys.token(ref)));
    if (raw === null) return undefined;
    const token = this.open(ref, raw);
    // Redis expires keys itself; this guards the millisecond between its TTL and ours.
    return token.expiresAt > this.clock.now() ? token : undefined;
  }

  async put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    const ttlMs = token.expiresAt - this.clock.now();
    if (ttlMs <= 0) return false;
    const written = await this.run(() =>
      this.redis.fencedPut(
        this.keys.token(ref),
        this.seal(ref, token),
        String(token.expiresAt),
        String(ttlMs),
      ),
    );
    return written === 1;
  }

  async delete(ref: TokenRef): Promise<void> {
    await this.run(() => this.redis.del(this.keys.token(ref)));
  }

  async acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const result = await this.run(() =>
      this.redis.set(this.keys.lock(ref), owner, 'PX', Math.ceil(ttlMs), 'NX'),
    );
    return result === 'OK';
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

  async ping(): Promise<void> {
    await this.run(() => this.redis.ping());
  }

  private seal(ref: TokenRef, token: StoredToken): string {
    const fields: SealedFields = { a: token.accessToken, s: token.scope, r: token.requestedAt };
    return `${token.expiresAt}|${this.cipher.encrypt(JSON.stringify(fields), associatedData(ref, token.expiresAt))}`;
  }

  private open(ref: TokenRef, raw: string): StoredToken {
    const sep = raw.indexOf('|');
    const expiresAt = Number(raw.slice(0, sep));
    if (sep <= 0 || !Number.isSafeInteger(expiresAt)) {
      throw new StoreUnavailableError('stored value has an unknown format');
    }
    try {
      const fields = JSON.parse(
        this.cipher.decrypt(raw.slice(sep + 1), associatedData(ref, expiresAt)),
      ) as SealedFields;
      return {
        accessToken: fields.a,
        tokenType: 'Bearer',
        scope: fields.s,
        requestedAt: fields.r,
        expiresAt,
      };
    } catch (e) {
      const why = e instanceof TokenDecryptionError ? e.message : 'unreadable value';
      throw new StoreUnavailableError(`stored token rejected: ${why}`);
    }
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (e) {
      throw new StoreUnavailableError(`redis: ${(e as Error).message}`);
    }
  }
}

/** Client and environment (and expiry) are bound in, so a value cannot be moved to another key. */
function associatedData(ref: TokenRef, expiresAt: number): string {
  return `token-vendor/v1|${ref.environment}/${ref.clientId}|${expiresAt}`;
}
