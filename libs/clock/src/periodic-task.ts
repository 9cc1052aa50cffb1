import { Logger } from '@nestjs/common';

/**
 * The one way periodic work runs: its owner calls `start()` when it begins serving and `stop()`
 * on shutdown. `tick` runs every `intervalMs` at a fixed rate (a slow tick does not delay the
 * next one; work that must not overlap guards itself). The timer is unref'd, so it never keeps
 * a process alive, and a tick that throws or rejects is logged: a failing tick never becomes an
 * unhandled rejection that ends the process.
 */
export class PeriodicTask {
  private readonly logger = new Logger('PeriodicTask');
  private timer?: NodeJS.Timeout;

  constructor(
    /** Names the work in the log line of a failed tick. */
    readonly name: string,
    readonly intervalMs: number,
    private readonly tick: () => unknown,
  ) {}

  /** Starts ticking (the first tick one interval from now); starting twice is one task. */
  start(): this {
    if (this.timer !== undefined) return this;
    this.timer = setInterval(() => this.runTick(), this.intervalMs);
    this.timer.unref();
    return this;
  }

  /** Stops ticking; a tick already running finishes on its own. Safe to call more than once. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
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
