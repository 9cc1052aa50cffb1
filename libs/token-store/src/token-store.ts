/**
 * A held access token: what the store keeps per (environment, client). Its times are
 * readings of THIS process's monotonic clock (Clock.monotonic): they mean nothing in another
 * process, so the Redis store keeps the remaining life (a TTL in Redis's own time) instead and
 * turns it back into these on read. Shown as a date only through wallTimeOf.
 */
export interface StoredToken {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  readonly scope?: string;
  /** Monotonic ms when the request that obtained it was sent (its life counts from here). */
  readonly requestedAt: number;
  /** Monotonic ms when it stops being valid. */
  readonly expiresAt: number;
}

/** A client's identity everywhere in the service: its environment and its client id. */
export interface ClientRef {
  readonly environment: string;
  readonly clientId: string;
}

/** `environment/clientId`: the one text form of a ClientRef (logs, maps, messages). */
export function formatClientRef(ref: ClientRef): string {
  return `${ref.environment}/${ref.clientId}`;
}

/** The inverse of formatClientRef (environment names never contain `/`); undefined when malformed. */
export function parseClientRef(text: string): ClientRef | undefined {
  const slash = text.indexOf('/');
  if (slash <= 0 || slash === text.length - 1) return undefined;
  return { environment: text.slice(0, slash), clientId: text.slice(slash + 1) };
}

/**
 * Where a client's token is kept: the client, and the fingerprint of the token request's
 * shape (token URL, scope, auth method, ...) that fetched it. A token stored under another
 * shape is not returned: it was fetched under another configuration. No shape: '' (tests and
 * tools that address a client's slot without a configuration).
 */
export interface TokenRef extends ClientRef {
  readonly shape?: string;
}

/** Raised when the store cannot answer (connection down, command timeout). */
export class StoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export const TOKEN_STORE = Symbol('TOKEN_STORE');
export const REFRESH_LOCK = Symbol('REFRESH_LOCK');

/**
 * Where tokens are shared between replicas. Two honest implementations (Redis, memory) run
 * against one contract test suite.
 */
export interface TokenStore {
  /**
   * The held token of this shape, or undefined when none is held. Expired tokens, tokens of
   * another shape and values that do not decrypt or parse count as absent (an unreadable value
   * is replaced by the next write; it is not a store outage).
   */
  get(ref: TokenRef): Promise<StoredToken | undefined>;
  /**
   * Stores `token` with a TTL equal to its remaining life, unless the store already holds
   * one that expires at the same time or later (the fence), or the token was revoked.
   * Returns whether it was written.
   */
  put(ref: TokenRef, token: StoredToken): Promise<boolean>;
  delete(ref: TokenRef): Promise<void>;
  /**
   * Revokes a token for the whole fleet: its SHA-256 (hex) is recorded until `expiresAt`
   * (monotonic, as in StoredToken)
   * (later writes of it are refused) and the stored value is removed if it is that token.
   */
  revoke(ref: ClientRef, tokenSha256: string, expiresAt: number): Promise<void>;
  /** Whether the token with this SHA-256 was revoked (the durable marker). */
  isRevoked(ref: ClientRef, tokenSha256: string): Promise<boolean>;
  /**
   * Claims the client's one forced refresh per interval for the whole fleet (`SET NX PX`):
   * true for the first claim in `intervalMs`, false until it passes.
   */
  claimForcedRefresh(ref: ClientRef, intervalMs: number): Promise<boolean>;
  /** Cheap liveness check of the backing store, for readiness. */
  ping(): Promise<void>;
  /**
   * The fleet's reference clock (Redis `TIME`), wall ms; undefined when there is none (the
   * memory store). Used to measure this replica's wall-clock skew, never a token's life.
   */
  referenceTime(): Promise<number | undefined>;
  readonly kind: 'redis' | 'memory';
}

/**
 * The refresh lock of a token, beside the store: one fetch per token for the whole fleet.
 * `owner` is a value unique to one attempt, so only its holder can extend or release it.
 */
export interface RefreshLock {
  /** Takes the lock if nobody holds it (a lock left without a TTL is healed meanwhile). */
  acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean>;
  /** Extends the lock if `owner` still holds it; false when it was lost. */
  extendLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock if `owner` still holds it (never someone else's). */
  releaseLock(ref: TokenRef, owner: string): Promise<void>;
  /** Whether anyone holds the lock now (waiters keep waiting while its holder extends it). */
  isLocked(ref: TokenRef): Promise<boolean>;
}
