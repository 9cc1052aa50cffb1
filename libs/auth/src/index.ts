export { AuthModule } from './auth.module';
export type { Caller } from './caller-registry';
export { isCallerAllowed } from './caller-acl';
export { FAILED_AUTH_LIMIT, FAILED_AUTH_WINDOW_MS } from './failed-auth.limiter';
export { Public } from './public.decorator';
export { CallerAuthGuard } from './caller-auth.guard';
