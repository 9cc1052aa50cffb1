export { TokensModule } from './tokens.module';
export { RefreshSwitchModule } from './refresh-switch.module';
export {
  TokenVendingService,
  MAX_MIN_TTL_SECONDS,
  MIN_REFETCH_INTERVAL_MS,
  type TokenQuery,
} from './token-vending.service';
export { TokenCache, RECHECK_TRUST_MS } from './token-cache';
export { TokenSource, type Revocation } from './token-source';
export { tokenRequestShape } from './token-request-shape';
export {
  TokenFetcher,
  lockTtlMs,
  HOLDER_PATIENCE_MS,
  LOCK_POLL_INTERVAL_MS,
  REJECTION_HOLD_MS,
  type ObtainOptions,
} from './token-fetcher';
export {
  RefreshScheduler,
  RANDOM,
  REFRESH_ENABLED,
  REFRESH_TICK_MS,
  MAX_CONCURRENT_REFRESHES,
  WARM_SPREAD_MS,
  type RefreshState,
} from './refresh.scheduler';
export { refreshDueAt, retryDelayMs, REFRESH_JITTER, REJECTED_RETRY_MS } from './refresh-policy';
export { DueQueue } from './due-queue';
export { ClientResolver } from './client-resolver';
export { SingleFlight } from './single-flight';
export { toVendedToken, type VendedToken } from './vended-token';
export { VendedTokenDto, TokenRejectionDto } from './vended-token.dto';
export {
  TokenRejectionService,
  parseReport,
  type RejectionOutcome,
} from './token-rejection.service';
export { SecretCandidates, type Candidate, type RotationHistory } from './secret-candidates';
