export type { AuthMethod, FetchOptions, IssuedToken, TokenRequest } from './token-request';
export { OAuthClient } from './oauth.client';
export { IdpDiscovery, DISCOVERY_REFRESH_MS, type DiscoveredIdp } from './idp-discovery';
export { IdpDispatchers } from './idp-dispatchers';
export { ASSERTION_LIFETIME_SECONDS, CLIENT_ASSERTION_TYPE } from './client-assertion';
export { UpstreamModule } from './upstream.module';
export { UPSTREAM_OBSERVER } from './upstream-observer';
export type {
  AttemptOutcome,
  AttemptTrace,
  UpstreamAttempt,
  UpstreamAttemptStart,
  UpstreamObserver,
} from './upstream-observer';
export { parseTokenResponse, MAX_ACCESS_TOKEN_LENGTH } from './token-response.parser';
export type { TokenAnswerContext } from './token-response.parser';
export {
  DEFAULT_LIFETIME_SECONDS,
  MAX_LIFETIME_SECONDS,
  resolveLifetimeSeconds,
} from './expires-in.rule';
export { jwtExpirySeconds } from './jwt-expiry';
export { basicAuthorization, buildTokenHttpRequest, formUrlEncode } from './client-authentication';
export type { TokenHttpRequest } from './client-authentication';
export { classifyErrorAnswer } from './error-response.classifier';
export type { ErrorAnswer } from './error-response.classifier';
export {
  DEFAULT_MAX_ATTEMPTS,
  RETRY_POLICY,
  honoursRetryAfter,
  isRetryableStatus,
  parseRetryAfterMs,
} from './retry-policy';
