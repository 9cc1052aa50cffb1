import type { Clock } from '@app/clock';
import { replaces } from './later-token';
import { tokenSha256 } from './token-sha256';
import {
  formatClientRef,
  type ClientRef,
  type RefreshLock,
  type StoredToken,
  type TokenRef,
  type TokenStore,
} from './token-store';

/**
 * The store for a single replica without Redis (demo, development). Same semantics as the
 * Redis store: expired entries are never returned, the write is fenced, revoked tokens are
 * refused, and a token is returned only to the shape that stored it. Its own process is the
 * only clock here, so every time in it is monotonic (Clock.monotonic).
 */
export class MemoryTokenStore implements TokenStore, RefreshLock {
  readonly kind = 'memory';
  private readonly tokens = new Map<string, { token: StoredToken; shape: string }>();
  private readonly locks = new Map<string, { owner: string; until: number }>();
  private readonly revoked = new Map<string, Map<string, number>>();
  private readonly forced = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  get(ref: TokenRef): Promise<StoredToken | undefined> {
    const key = formatClientRef(ref);
    const entry = this.tokens.get(key);
    if (entry && entry.token.expiresAt <= this.clock.monotonic()) {
      this.tokens.delete(key);
      return Promise.resolve(undefined);
    }
    return Promise.resolve(entry?.shape === (ref.shape ?? '') ? entry.token : undefined);
  }

  put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    const now = this.clock.monotonic();
    if (token.expiresAt <= now) return Promise.resolve(false);
    if (this.revokedUntil(ref, tokenSha256(token.accessToken)) !== undefined) {
      return Promise.resolve(false);
    }
    const current = this.tokens.get(formatClientRef(ref))?.token;
    if (current && current.expiresAt > now && !replaces(token, current)) {
      return Promise.resolve(false);
    }
    this.tokens.set(formatClientRef(ref), { token, shape: ref.shape ?? '' });
    return Promise.resolve(true);
  }

  delete(ref: TokenRef): Promise<void> {
    this.tokens.delete(formatClientRef(ref));
    return Promise.resolve();
  }

  revoke(ref: ClientRef, sha: string, expiresAt: number): Promise<void> {
    const key = formatClientRef(ref);
    const marks = this.revoked.get(key) ?? new Map<string, number>();
    marks.set(sha, expiresAt);
    this.revoked.set(key, marks);
    const current = this.tokens.get(key)?.token;
    if (current && tokenSha256(current.accessToken) === sha) this.tokens.delete(key);
    return Promise.resolve();
  }

  isRevoked(ref: ClientRef, sha: string): Promise<boolean> {
    return Promise.resolve(this.revokedUntil(ref, sha) !== undefined);
  }

  claimForcedRefresh(ref: ClientRef, intervalMs: number): Promise<boolean> {
    const key = formatClientRef(ref);
    const until = this.forced.get(key);
    if (until !== undefined && until > this.clock.monotonic()) return Promise.resolve(false);
    this.forced.set(key, this.clock.monotonic() + intervalMs);
    return Promise.resolve(true);
  }

  acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.locks.get(formatClientRef(ref));
    if (held && held.until > this.clock.monotonic()) return Promise.resolve(false);
    this.locks.set(formatClientRef(ref), { owner, until: this.clock.monotonic() + ttlMs });
    return Promise.resolve(true);
  }

  extendLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.locks.get(formatClientRef(ref));
    if (!held || held.owner !== owner || held.until <= this.clock.monotonic())
      return Promise.resolve(false);
    held.until = this.clock.monotonic() + ttlMs;
    return Promise.resolve(true);
  }

  releaseLock(ref: TokenRef, owner: string): Promise<void> {
    if (this.locks.get(formatClientRef(ref))?.owner === owner)
      this.locks.delete(formatClientRef(ref));
    return Promise.resolve();
  }

  isLocked(ref: TokenRef): Promise<boolean> {
    const held = this.locks.get(formatClientRef(ref));
    return Promise.resolve(held !== undefined && held.until > this.clock.monotonic());
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  /** No shared clock to compare with: this process is the only one. */
  referenceTime(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  private revokedUntil(ref: ClientRef, sha: string): number | undefined {
    const until = this.revoked.get(formatClientRef(ref))?.get(sha);
    return until !== undefined && until > this.clock.monotonic() ? until : undefined;
  }
}
