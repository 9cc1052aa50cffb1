import { performance } from 'node:perf_hooks';

/**
 * Time behind one seam, so tests drive expiry, refresh and backoff without sleeping.
 *
 * Two readings, for two jobs (README "Which clock decides what"):
 * - `monotonic()` measures durations and this process's deadlines: token lives, refresh
 *   schedules, lock TTLs, backoffs. It never jumps with the wall clock and keeps counting while
 *   the process is paused (SIGSTOP), so a deadline passed during a pause is seen as passed.
 *   Its values mean nothing outside this process: they are never stored nor sent.
 * - `now()` is wall-clock milliseconds since the epoch, for what is shown (`expires_at`, logs)
 *   and what other parties stamp in wall time (a JWT's `exp`, an HTTP-date `Retry-After`).
 */
export interface Clock {
  /** Wall-clock ms since the epoch. */
  now(): number;
  /** Monotonic ms from an arbitrary origin of this process. */
  monotonic(): number;
  /** Resolves after `ms` of this clock's time; rejects with the signal's reason when aborted. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const CLOCK = Symbol('CLOCK');

/**
 * TEST ONLY: shifts this process's wall clock (`now()`) by this many milliseconds, so the fleet
 * tests can run a replica whose wall clock is wrong (README "Which clock decides what"). The
 * monotonic clock is not shifted. Never set it in a deployment.
 */
export const TEST_WALL_CLOCK_OFFSET_ENV = 'TOKEN_VENDOR_TEST_WALL_CLOCK_OFFSET_MS';

export class SystemClock implements Clock {
  /** @param wallOffsetMs added to `now()` only (the test-only offset; 0 in production). */
  constructor(private readonly wallOffsetMs = 0) {}

  /** The system clock, shifted by TEST_WALL_CLOCK_OFFSET_ENV when a test sets it. */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): SystemClock {
    const raw = env[TEST_WALL_CLOCK_OFFSET_ENV];
    if (raw === undefined || raw === '') return new SystemClock();
    const offset = Number(raw);
    if (!Number.isSafeInteger(offset)) {
      throw new Error(`${TEST_WALL_CLOCK_OFFSET_ENV} must be an integer (milliseconds)`);
    }
    return new SystemClock(offset);
  }

  now(): number {
    return Date.now() + this.wallOffsetMs;
  }

  monotonic(): number {
    return performance.now();
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const timer = setTimeout(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      timer.unref?.();
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** The wall-clock time (ms since the epoch) of a monotonic instant of this process: for display. */
export function wallTimeOf(clock: Clock, monotonicMs: number): number {
  return clock.now() + (monotonicMs - clock.monotonic());
}
