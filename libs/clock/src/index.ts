export { CLOCK, SystemClock } from './clock';
export type { Clock } from './clock';
export { ManualClock } from './manual-clock';
export { ClockModule } from './clock.module';
