export type { IssuedToken, TokenRequest } from './token-request';
export { OAuthClient } from './oauth.client';
export { IdpDiscovery } from './idp-discovery';
export { CA_FILE_RECHECK_MS, IdpDispatchers } from './idp-dispatchers';
export { UpstreamModule } from './upstream.module';
export { UPSTREAM_OBSERVER } from './upstream-observer';
export type {
  AttemptOutcome,
  AttemptTrace,
  UpstreamAttempt,
  UpstreamAttemptStart,
  UpstreamObserver,
} from './upstream-observer';
export { MAX_LIFETIME_SECONDS } from './expires-in.rule';
export { formUrlEncode } from './client-authentication';
export { DEFAULT_MAX_ATTEMPTS, RETRY_POLICY } from './retry-policy';
