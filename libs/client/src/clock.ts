/**
 * Time behind one seam, so tests drive expiry and backoff without sleeping. `now()` is
 * wall-clock milliseconds since the epoch: `expires_at` is an absolute time.
 * (The same shape as the service's own clock, so one manual clock can drive both in tests.)
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms` of this clock's time. */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // Not unref'd: a caller awaiting a retry is work in progress, and a script whose only
  // pending work is that backoff must not exit with the promise unsettled.
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};
