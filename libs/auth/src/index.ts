export { AuthModule } from './auth.module';
export { CallerRegistry, type Caller, type PresentedWorkload } from './caller-registry';
export {
  WorkloadCallerAuthenticator,
  CALLER_TOKEN_ALGORITHMS,
  CALLER_TOKEN_LEEWAY_SECONDS,
  type CallerTokenRefusal,
} from './workload-caller.authenticator';
export { VERIFIED_TOKEN_CACHE_SIZE } from './verified-token.cache';
export { isCallerAllowed, aclEntryMatches } from './caller-acl';
export {
  FailedAuthLimiter,
  FAILED_AUTH_LIMIT,
  FAILED_AUTH_WINDOW_MS,
  FAILED_AUTH_MAX_SOURCES,
} from './failed-auth.limiter';
export { Public, IS_PUBLIC } from './public.decorator';
export { CallerAuthGuard } from './caller-auth.guard';
