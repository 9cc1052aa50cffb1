export { AuthModule } from './auth.module';
export { CallerRegistry, type Caller } from './caller-registry';
export { isCallerAllowed, aclEntryMatches } from './caller-acl';
export {
  FailedAuthLimiter,
  FAILED_AUTH_LIMIT,
  FAILED_AUTH_WINDOW_MS,
  FAILED_AUTH_MAX_SOURCES,
} from './failed-auth.limiter';
export { Public, IS_PUBLIC } from './public.decorator';
export { CallerAuthGuard } from './caller-auth.guard';
