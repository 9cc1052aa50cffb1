import { Global, Module } from '@nestjs/common';
import { PeriodicTasks } from './periodic-tasks';

/**
 * Provides `PeriodicTasks` everywhere. It needs `SchedulerRegistry`, which the root module's
 * `ScheduleModule.forRoot()` provides globally.
 */
@Global()
@Module({ providers: [PeriodicTasks], exports: [PeriodicTasks] })
export class PeriodicModule {}
