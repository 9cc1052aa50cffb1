export { TOKEN_STORE, StoreUnavailableError } from './token-store';
export type { StoredToken, TokenRef, TokenStore } from './token-store';
export { MemoryTokenStore } from './memory-token.store';
export { RedisTokenStore } from './redis-token.store';
export { TokenCipher, TokenDecryptionError } from './token-cipher';
export { RedisKeys } from './redis-keys';
export {
  REDIS_CLIENT,
  REDIS_COMMAND_TIMEOUT_MS,
  createRedisClient,
  waitUntilReady,
} from './redis-client.factory';
export { TokenStoreModule } from './token-store.module';
