// The door: what other libraries, the app and the suites use. Specs beside the code reach the
// rest by relative path.
export { TOKEN_STORE, REFRESH_LOCK, StoreUnavailableError, parseClientRef } from './token-store';
export type { RefreshLock, StoredToken, TokenRef, TokenStore } from './token-store';
export { MemoryTokenStore } from './memory-token.store';
export { RedisTokenStore } from './redis-token.store';
export { TokenCipher } from './token-cipher';
export { tokenSha256 } from './token-sha256';
export { EXPIRY_TIE_MS, laterToken, replaces } from './later-token';
export { RedisKeys } from './redis-keys';
export {
  FLEET_CHANNEL,
  LocalFleetChannel,
  type FleetChannel,
  type FleetAck,
} from './fleet-channel';
export {
  REDIS_COMMAND_TIMEOUT_MS,
  createRedisClient,
  waitUntilReady,
} from './redis-client.factory';
export { TokenStoreModule } from './token-store.module';
export { ClockSkewMonitor } from './clock-skew.monitor';
export { REDIS_TLS_FILES_RECHECK_MS, RedisTls } from './redis-tls';
export { secondStreamErrorsHeard } from './stream-error-listener';
