import type { Clock } from '@app/clock';
import type { StoredToken, TokenRef, TokenStore } from './token-store';

/**
 * The store for a single replica without Redis (demo, development). Same semantics as the
 * Redis store: expired entries are never returned, and the write is fenced.
 */
export class MemoryTokenStore implements TokenStore {
  readonly kind = 'memory';
  private readonly tokens = new Map<string, StoredToken>();
  private readonly locks = new Map<string, { owner: string; until: number }>();

  constructor(private readonly clock: Clock) {}

  get(ref: TokenRef): Promise<StoredToken | undefined> {
    const key = keyOf(ref);
    const token = this.tokens.get(key);
    if (token && token.expiresAt <= this.clock.now()) {
      this.tokens.delete(key);
      return Promise.resolve(undefined);
    }
    return Promise.resolve(token);
  }

  put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    const now = this.clock.now();
    if (token.expiresAt <= now) return Promise.resolve(false);
    const current = this.tokens.get(keyOf(ref));
    if (current && current.expiresAt > now && current.expiresAt >= token.expiresAt) {
      return Promise.resolve(false);
    }
    this.tokens.set(keyOf(ref), token);
    return Promise.resolve(true);
  }

  delete(ref: TokenRef): Promise<void> {
    this.tokens.delete(keyOf(ref));
    return Promise.resolve();
  }

  acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.locks.get(keyOf(ref));
    if (held && held.until > this.clock.now()) return Promise.resolve(false);
    this.locks.set(keyOf(ref), { owner, until: this.clock.now() + ttlMs });
    return Promise.resolve(true);
  }

  extendLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.locks.get(keyOf(ref));
    if (!held || held.owner !== owner || held.until <= this.clock.now())
      return Promise.resolve(false);
    held.until = this.clock.now() + ttlMs;
    return Promise.resolve(true);
  }

  releaseLock(ref: TokenRef, owner: string): Promise<void> {
    if (this.locks.get(keyOf(ref))?.owner === owner) this.locks.delete(keyOf(ref));
    return Promise.resolve();
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }
}

function keyOf(ref: TokenRef): string {
  return `${ref.environment}/${ref.clientId}`;
}
