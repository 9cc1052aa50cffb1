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
  sleep: (ms) =>
    new Promise((resolve) => {
      // unref'd: a pending backoff must not keep the caller's process alive on its own.
      setTimeout(resolve, Math.max(0, ms)).unref?.();
    }),
};
