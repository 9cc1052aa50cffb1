export {
  TOKEN_STORE,
  REFRESH_LOCK,
  StoreUnavailableError,
  formatClientRef,
  parseClientRef,
} from './token-store';
export type { ClientRef, RefreshLock, StoredToken, TokenRef, TokenStore } from './token-store';
export { MemoryTokenStore } from './memory-token.store';
export { RedisTokenStore } from './redis-token.store';
export { TokenCipher, TokenDecryptionError } from './token-cipher';
export { tokenSha256 } from './token-sha256';
export { EXPIRY_TIE_MS, laterToken, replaces } from './later-token';
export { RedisKeys } from './redis-keys';
export {
  FLEET_CHANNEL,
  FLEET_CONFIRM_WINDOW_MS,
  FLEET_ACK_TIMEOUT_MS,
  FLEET_HEARTBEAT_INTERVAL_MS,
  LocalFleetChannel,
  RedisFleetChannel,
  type FleetChannel,
  type FleetMessage,
  type FleetAck,
  type FleetRequest,
} from './fleet-channel';
export {
  REDIS_CLIENT,
  REDIS_COMMAND_TIMEOUT_MS,
  createRedisClient,
  waitUntilReady,
} from './redis-client.factory';
export { TokenStoreModule } from './token-store.module';
export {
  ClockSkewMonitor,
  CLOCK_SKEW_CHECK_INTERVAL_MS,
  type ClockSkewReport,
} from './clock-skew.monitor';
