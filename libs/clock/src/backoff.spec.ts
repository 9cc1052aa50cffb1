import fc from 'fast-check';
import { backoffDelayMs as sut, backoffStepMs, type BackoffPolicy } from './backoff';

const ALMOST_ONE = 0.999_999_9;
const policy = (jitter: BackoffPolicy['jitter']): BackoffPolicy => ({
  baseMs: 1_000,
  capMs: 60_000,
  jitter,
});

describe('backoffStepMs', () => {
  it.each([
    [0, 1_000],
    [1, 1_000],
    [2, 2_000],
    [6, 32_000],
    [7, 60_000], // 64 s, capped
    [5_000, 60_000], // 2^4999 would be Infinity: still the cap
  ])('after %i failure(s) is %i ms', (failures, step) => {
    expect(backoffStepMs(policy('none'), failures)).toBe(step);
  });
});

describe('backoffDelayMs', () => {
  it('full jitter: uniform in [0, step)', () => {
    expect(sut(policy('full'), 3, () => 0)).toBe(0);
    expect(sut(policy('full'), 3, () => 0.5)).toBe(2_000);
    expect(sut(policy('full'), 3, () => ALMOST_ONE)).toBe(3_999);
  });

  it('equal jitter: uniform in [step/2, step)', () => {
    expect(sut(policy('equal'), 3, () => 0)).toBe(2_000);
    expect(sut(policy('equal'), 3, () => 0.5)).toBe(3_000);
    expect(sut(policy('equal'), 3, () => ALMOST_ONE)).toBe(3_999);
    expect(sut(policy('equal'), 3, () => 1 - 2 ** -53)).toBe(4_000);
    expect(sut(policy('full'), 3, () => 1 - 2 ** -53)).toBe(3_999);
  });

  it('no jitter: the step itself, whatever the random source says', () => {
    expect(sut(policy('none'), 3, () => 0.5)).toBe(4_000);
    expect(sut(policy('none'), 9, () => 0)).toBe(60_000);
  });

  // Equal jitter reaches the step itself at Math.random's largest value (1 - 2^-53): step/2 +
  // step/2 * r rounds up there. Kept as it was in the refresh scheduler; full jitter never does.
  it('stays an integer within its band for any failure count and random value', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (failures, random) => {
          const step = backoffStepMs(policy('none'), failures);
          const full = sut(policy('full'), failures, () => random);
          const equal = sut(policy('equal'), failures, () => random);
          return (
            Number.isInteger(full) &&
            full >= 0 &&
            full < step &&
            Number.isInteger(equal) &&
            equal >= step / 2 &&
            equal <= step
          );
        },
      ),
    );
  });

  it('uses Math.random by default', () => {
    const delay = sut(policy('full'), 1);
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThan(1_000);
  });
});
