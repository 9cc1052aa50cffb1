export { CLOCK, SystemClock, TEST_WALL_CLOCK_OFFSET_ENV, wallTimeOf } from './clock';
export type { Clock } from './clock';
export { CLOCK_SKEW, CLOCK_SKEW_TOLERANCE_MS, ClockSkew } from './clock-skew';
export { ClockModule } from './clock.module';
export { backoffDelayMs, type BackoffPolicy } from './backoff';
