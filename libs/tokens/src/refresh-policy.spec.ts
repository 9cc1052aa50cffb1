import fc from 'fast-check';
import { backoffDelayMs } from '@app/clock';
import type { StoredToken } from '@app/token-store';
import {
  REFRESH_BACKOFF,
  REFRESH_JITTER,
  RETRY_BASE_MS,
  RETRY_CAP_MS,
  refreshDueAt,
} from './refresh-policy';

const REQUESTED_AT = Date.UTC(2026, 10, 27, 10, 0, 0);
const LIFETIME_MS = 1_200_000;
/** Just below 1: `random` is in [0, 1). */
const ALMOST_ONE = 1 - Number.EPSILON;

function tokenOf(lifetimeMs: number, requestedAt = REQUESTED_AT): StoredToken {
  return {
    accessToken: 'at',
    tokenType: 'Bearer',
    requestedAt,
    expiresAt: requestedAt + lifetimeMs,
  };
}

describe('refreshDueAt', () => {
  const sut = refreshDueAt;

  it.each([
    // random, due this long after the request: 0.75, 0.7125 and 0.675 of the lifetime
    [0, 900_000],
    [0.5, 855_000],
    [ALMOST_ONE, 810_000],
  ])(
    'with ratio 0.75 of a 1200 s lifetime and random %d: due %i ms after the request',
    (random, after) => {
      expect(sut(tokenOf(LIFETIME_MS), 0.75, random)).toBe(REQUESTED_AT + after);
    },
  );

  it.each([
    [0.5, 300_000, 0, 150_000],
    [0.9, 60_000, 0, 54_000],
    [0.75, 1_000, 0.5, 712], // 712.5, rounded down: never later than the jittered point
    [0.75, 1, 0, 0],
  ])(
    'ratio %d of a %i ms lifetime with random %d: due %i ms after the request',
    (ratio, lifetime, random, after) => {
      expect(sut(tokenOf(lifetime), ratio, random)).toBe(REQUESTED_AT + after);
    },
  );

  it('counts from when the token was requested, not from when it arrived', () => {
    const token = tokenOf(LIFETIME_MS, REQUESTED_AT + 5_000);

    expect(sut(token, 0.75, 0)).toBe(REQUESTED_AT + 5_000 + 900_000);
  });

  it('stays between (1 - REFRESH_JITTER) × ratio and ratio of the lifetime', () => {
    expect(REFRESH_JITTER).toBe(0.1);
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000, max: 86_400_000 }),
        fc.double({ min: 0.01, max: 0.99, noNaN: true }),
        fc.double({ min: 0, max: ALMOST_ONE, noNaN: true }),
        (lifetime, ratio, random) => {
          const offset = sut(tokenOf(lifetime), ratio, random) - REQUESTED_AT;

          expect(offset).toBeGreaterThanOrEqual(
            Math.floor(lifetime * ratio * (1 - REFRESH_JITTER)) - 1,
          );
          expect(offset).toBeLessThanOrEqual(lifetime * ratio);
          expect(offset).toBeLessThan(lifetime);
        },
      ),
    );
  });
});

describe('refresh backoff', () => {
  const sut = (failures: number, random: number): number =>
    backoffDelayMs(REFRESH_BACKOFF, failures, () => random);

  it.each([
    // failures, random, delay
    [1, 0, 500],
    [1, 0.5, 750],
    [1, ALMOST_ONE, 999],
    [2, 0, 1_000],
    [2, ALMOST_ONE, 1_999],
    [3, 0, 2_000],
    [4, 0, 4_000],
    [6, 0, 16_000],
    [6, 0.5, 24_000],
    [7, 0, 30_000], // 64 s step, capped at 60 s
    [7, ALMOST_ONE, 59_999],
    [50, 0, 30_000],
    [5_000, 0.5, 45_000], // 2 ** 4999 is Infinity: still the cap
  ])('after %i failure(s) with random %d waits %i ms', (failures, random, delay) => {
    expect(sut(failures, random)).toBe(delay);
  });

  it('treats zero failures like the first', () => {
    expect(sut(0, 0)).toBe(sut(1, 0));
  });

  it('grows with each failure until the cap (same random)', () => {
    const delays = Array.from({ length: 10 }, (_, i) => sut(i + 1, 0));

    expect(delays).toEqual([
      500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000,
    ]);
  });

  it('jitters within [half, full) of the capped step', () => {
    expect([RETRY_BASE_MS, RETRY_CAP_MS]).toEqual([1_000, 60_000]);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: ALMOST_ONE, noNaN: true }),
        (failures, random) => {
          const step = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (failures - 1));
          const delay = sut(failures, random);

          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(step / 2);
          expect(delay).toBeLessThan(step);
          expect(delay).toBeLessThanOrEqual(RETRY_CAP_MS);
        },
      ),
    );
  });
});
