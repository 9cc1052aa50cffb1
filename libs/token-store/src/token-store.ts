/** A held access token: what the store keeps per (environment, client). */
export interface StoredToken {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  readonly scope?: string;
  /** Clock ms when the request that obtained it was sent. */
  readonly requestedAt: number;
  /** Clock ms when it stops being valid. */
  readonly expiresAt: number;
}

export interface TokenRef {
  readonly environment: string;
  readonly clientId: string;
}

/** Raised when the store cannot answer (connection down, command timeout, unreadable value). */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export const TOKEN_STORE = Symbol('TOKEN_STORE');

/**
 * Where tokens are shared between replicas. Two honest implementations (Redis, memory) run
 * against one contract test suite.
 */
export interface TokenStore {
  /** The held token, or undefined when none is held (expired tokens are never returned). */
  get(ref: TokenRef): Promise<StoredToken | undefined>;
  /**
   * Stores `token` with a TTL equal to its remaining life, unless the store already holds
   * one that expires at the same time or later (the fence). Returns whether it was written.
   */
  put(ref: TokenRef, token: StoredToken): Promise<boolean>;
  delete(ref: TokenRef): Promise<void>;
  /**
   * Takes the refresh lock of a token if nobody holds it (`SET NX PX`); `owner` is a value
   * unique to this attempt, so only its holder can extend or release it.
   */
  acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock if `owner` still holds it; false when it was lost. */
  extendLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `owner` still holds it (never someone else's). */
  releaseLock(ref: TokenRef, owner: string): Promise<void>;
  /** Cheap liveness check of the backing store, for readiness. */
  ping(): Promise<void>;
  readonly kind: 'redis' | 'memory';
}
