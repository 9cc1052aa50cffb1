import type { TokenRef } from './token-store';

/**
 * Key layout. The `{environment/clientId}` hash tag puts a client's token and its lock in the
 * same Redis Cluster slot, so the Lua scripts touching both stay cluster-safe.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  token(ref: TokenRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:token`;
  }

  lock(ref: TokenRef): string {
    return `${this.prefix}{${ref.environment}/${ref.clientId}}:lock`;
  }
}
