export { PeriodicModule } from './periodic.module';
export { PeriodicTasks } from './periodic-tasks';
export type { PeriodicTask } from './periodic-task';
