import { SystemClock, type Clock } from '@app/clock';

/** Where a test clock's time comes from. */
export interface TestClockOptions {
  /**
   * The instant the clock starts at (both readings; default 2026-11-27T10:00:00Z), or `'system'`:
   * the system clock (wall `Date.now()`, monotonic `performance.now()`) plus whatever the test
   * advanced, for a service that also talks to real IdPs and Redis.
   */
  start?: number | 'system';
  /**
   * What a sleep of the code under test does:
   * - `'manual'` (default): it waits until the test advances the clock past it;
   * - `'skip'`: it returns at once, after moving the clock forward by the amount asked
   *   (retry tests run in milliseconds and still see every delay);
   * - `'real'`: it waits that long on a real timer.
   */
  sleeps?: 'manual' | 'skip' | 'real';
}

interface Sleeper {
  wakeAt: number;
  resolve: () => void;
}

const DEFAULT_START = Date.UTC(2026, 10, 27, 10, 0, 0);
const systemClock = new SystemClock();

/**
 * The one clock of the tests (README "Which clock decides what"): the service's injectable
 * `Clock` (and the SDK's, which is its `now` and `sleep`), moved only by the test and by the
 * sleeps it lets pass. Without `start: 'system'`, its monotonic reading is the same number as
 * its wall time until the test skews the wall clock (`skewWall`), so tests can state expiries
 * as dates. Every sleep asked for is recorded in `sleeps`.
 */
export class TestClock implements Clock {
  /** Every sleep the code under test asked for, in ms, in order. */
  readonly sleeps: number[] = [];
  private readonly start: number | 'system';
  private readonly sleepMode: 'manual' | 'skip' | 'real';
  /** Time the test advanced (and skipped sleeps added), on both readings. */
  private elapsed = 0;
  private wallSkew = 0;
  private sleepers: Sleeper[] = [];

  constructor(options: TestClockOptions = {}) {
    this.start = options.start ?? DEFAULT_START;
    this.sleepMode = options.sleeps ?? 'manual';
  }

  now(): number {
    return this.base('wall') + this.elapsed + this.wallSkew;
  }

  monotonic(): number {
    return this.base('monotonic') + this.elapsed;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    this.sleeps.push(ms);
    if (this.sleepMode === 'real') return systemClock.sleep(ms, signal);
    if (this.sleepMode === 'skip') {
      this.elapsed += Math.max(0, ms);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const sleeper: Sleeper = { wakeAt: this.elapsed + Math.max(0, ms), resolve };
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

  /** Number of sleeps waiting for the test to advance the clock: lets a test wait until the code under test is parked. */
  get pendingSleeps(): number {
    return this.sleepers.length;
  }

  /** How much time the test advanced (and skipped sleeps added) since the start. */
  get advancedMs(): number {
    return this.elapsed;
  }

  /** Time passes (both readings): wakes the sleeps it passes and lets their continuations run. */
  async advance(ms: number): Promise<void> {
    this.elapsed += ms;
    const due = this.sleepers.filter((s) => s.wakeAt <= this.elapsed);
    this.sleepers = this.sleepers.filter((s) => s.wakeAt > this.elapsed);
    for (const s of due) s.resolve();
    // Let the woken continuations run before the test looks again.
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }

  /** Puts the clock at `instant` (both readings, forward or back) without waking anyone: for tests placed at chosen instants. */
  jumpTo(instant: number): void {
    this.elapsed += instant - this.now();
  }

  /** Moves the wall clock only (a clock set wrong, an NTP step); monotonic time does not jump. */
  skewWall(ms: number): void {
    this.wallSkew += ms;
  }

  private base(reading: 'wall' | 'monotonic'): number {
    if (this.start !== 'system') return this.start;
    return reading === 'wall' ? Date.now() : systemClock.monotonic();
  }
}
