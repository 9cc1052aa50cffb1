// The door: what other libraries, the app and the end-to-end suites use. Specs beside the code
// reach the rest by relative path.
export { TokensModule, type TokensModuleImport } from './tokens.module';
export { TokenSource } from './token-source';
export { RefreshScheduler, REFRESH_ENABLED } from './refresh.scheduler';
export { SecretCandidates, type Candidate } from './secret-candidates';
export { MAX_MIN_TTL_SECONDS, MIN_REFETCH_INTERVAL_MS } from './token-vending.service';
export { REJECTION_HOLD_MS, lockTtlMs } from './token-fetcher';
