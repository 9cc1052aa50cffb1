import type { ClientRef } from './token-store';

/**
 * Key layout. The `{environment/clientId}` hash tag puts a client's token, its lock and its
 * markers in the same Redis Cluster slot, so the Lua scripts touching several stay
 * cluster-safe.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  token(ref: ClientRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:token`;
  }

  lock(ref: ClientRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:lock`;
  }

  /** Hash of revoked tokens' SHA-256 → expiry: the durable invalidation marker. */
  revoked(ref: ClientRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:revoked`;
  }

  /** Present while a forced refresh (a downstream rejection) was spent for the interval. */
  forcedRefresh(ref: ClientRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:forced-refresh`;
  }

  /** The fleet's pub/sub channel (invalidations, operator actions, heartbeats). */
  fleetChannel(): string {
    return `${this.prefix}fleet`;
  }
}
