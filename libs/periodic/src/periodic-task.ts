import { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';

/**
 * One periodic job, made by `PeriodicTasks` (README "How the pieces fit"): its owner calls `start()`
 * when it begins serving and `stop()` on shutdown. `tick` runs every `intervalMs` at a fixed
 * rate (a slow tick does not delay the next one; work that must not overlap guards itself).
 * The timer is unref'd, so it never keeps a process alive, and a tick that throws or rejects
 * is logged: a failing tick never becomes an unhandled rejection that ends the process.
 *
 * With a registry, the running timer is registered in @nestjs/schedule's `SchedulerRegistry`
 * under `name`, so every background job is listed and managed in one place and ScheduleModule
 * clears whatever is still running when shutdown begins; the owner's `stop()` is then a no-op.
 */
export class PeriodicTask {
  private readonly logger = new Logger('PeriodicTask');
  private timer?: NodeJS.Timeout;

  constructor(
    /** Names the work in the registry and in the log line of a failed tick. */
    readonly name: string,
    readonly intervalMs: number,
    private readonly tick: () => unknown,
    private readonly registry?: SchedulerRegistry,
  ) {}

  /**
   * Starts ticking (the first tick one interval from now); starting twice is one task. A second
   * task under a name already registered is a wiring mistake: it throws before any timer runs.
   */
  start(): this {
    if (this.running) return this;
    if (this.registry?.doesExist('interval', this.name)) {
      throw new Error(`a periodic task named "${this.name}" is already running`);
    }
    const timer = setInterval(() => this.runTick(), this.intervalMs);
    timer.unref();
    this.registry?.addInterval(this.name, timer);
    this.timer = timer;
    return this;
  }

  /** Stops ticking; a tick already running finishes on its own. Safe to call more than once. */
  stop(): void {
    if (this.timer === undefined) return;
    if (this.registered()) this.registry?.deleteInterval(this.name);
    else clearInterval(this.timer);
    this.timer = undefined;
  }

  /** False once stopped, by its owner or (when registered) by ScheduleModule at shutdown. */
  get running(): boolean {
    return this.timer !== undefined && (this.registry === undefined || this.registered());
  }

  /** Whether the registry still holds this task's own timer (not one cleared or replaced). */
  private registered(): boolean {
    return (
      this.registry !== undefined &&
      this.registry.doesExist('interval', this.name) &&
      this.registry.getInterval(this.name) === this.timer
    );
  }

  private runTick(): void {
    try {
      const result = this.tick();
      if (result instanceof Promise) result.catch((e: unknown) => this.failed(e));
    } catch (e) {
      this.failed(e);
    }
  }

  private failed(e: unknown): void {
    this.logger.error({
      msg: 'periodic task failed',
      task: this.name,
      err: { message: e instanceof Error ? e.message : String(e) },
    });
  }
}
