import type { Clock } from './clock';

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

/**
 * A clock that only moves when a test says so; sleepers wake as time passes them. Its monotonic
 * reading is the same number as its wall time until a test skews the wall clock (`skewWall`),
 * so tests can state expiries as dates.
 */
export class ManualClock implements Clock {
  private current: number;
  private wallSkew = 0;
  private sleepers: Sleeper[] = [];

  constructor(start = Date.UTC(2026, 10, 27, 10, 0, 0)) {
    this.current = start;
  }

  now(): number {
    return this.current + this.wallSkew;
  }

  monotonic(): number {
    return this.current;
  }

  /** Moves the wall clock only (a clock set wrong, an NTP step); monotonic time does not jump. */
  skewWall(ms: number): void {
    this.wallSkew += ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const sleeper: Sleeper = { wakeAt: this.current + Math.max(0, ms), resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        'abort',
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
  }

  /** Number of pending sleeps: lets a test wait until the code under test is parked. */
  get pendingSleeps(): number {
    return this.sleepers.length;
  }

  async advance(ms: number): Promise<void> {
    this.current += ms;
    const due = this.sleepers.filter((s) => s.wakeAt <= this.current);
    this.sleepers = this.sleepers.filter((s) => s.wakeAt > this.current);
    for (const s of due) s.resolve();
    // Let the woken continuations run before the test looks again.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}
