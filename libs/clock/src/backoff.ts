/**
 * How a retry spreads out. `full`: uniform in [0, step) (the AWS "Exponential Backoff And
 * Jitter" full jitter), for many replicas that failed at the same moment and must not retry in
 * step. `equal`: uniform in [step/2, step), never retrying hot. `none`: exactly the step.
 */
export type BackoffJitter = 'full' | 'equal' | 'none';

export interface BackoffPolicy {
  /** The step after the first failure; it doubles with every further one. */
  readonly baseMs: number;
  /** The step never grows beyond this. */
  readonly capMs: number;
  readonly jitter: BackoffJitter;
}

/**
 * The capped exponential step after `failures` failures: min(cap, base * 2^(failures-1)).
 * Zero or fewer failures count as the first; the exponent is clamped so 2^n stays finite.
 */
export function backoffStepMs(policy: BackoffPolicy, failures: number): number {
  const exponent = Math.max(0, Math.floor(failures) - 1);
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(exponent, 1_000));
}

/**
 * The wait after `failures` failures: the capped exponential step, jittered as the policy says.
 *
 * @param failures 1-based number of failures so far (the attempt that just failed)
 * @param random a uniform [0, 1) source, injectable for tests
 */
export function backoffDelayMs(
  policy: BackoffPolicy,
  failures: number,
  random: () => number = Math.random,
): number {
  const step = backoffStepMs(policy, failures);
  switch (policy.jitter) {
    case 'full':
      return Math.floor(random() * step);
    case 'equal':
      return Math.floor(step / 2 + (step / 2) * random());
    case 'none':
      return step;
  }
}
