import { Injectable } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTask } from './periodic-task';

/**
 * The one way periodic work is made (README "How the pieces fit"): owners inject this factory and
 * start and stop the tasks it creates. Each Nest application has its own `SchedulerRegistry`,
 * so task names are unique per application, and several applications in one process (the
 * specs' fleets) do not collide.
 */
@Injectable()
export class PeriodicTasks {
  constructor(private readonly registry: SchedulerRegistry) {}

  /**
   * Background work (refresh tick, discovery refresh, polls, measurements, summaries):
   * registered in `SchedulerRegistry` under `name` while it runs, so ScheduleModule stops it
   * when shutdown begins, before in-flight requests drain.
   */
  create(name: string, intervalMs: number, tick: () => unknown): PeriodicTask {
    return new PeriodicTask(name, intervalMs, tick, this.registry);
  }

  /**
   * Work that must keep ticking while in-flight requests drain (the fleet heartbeat, a held
   * refresh lock's extension, the drain's idle-connection reaper): ScheduleModule clears its
   * registry in `beforeApplicationShutdown`, before Nest closes the HTTP server, so these are
   * not registered there, and their owner alone stops them.
   */
  createThroughDrain(name: string, intervalMs: number, tick: () => unknown): PeriodicTask {
    return new PeriodicTask(name, intervalMs, tick);
  }
}
