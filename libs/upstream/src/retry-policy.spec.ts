import fc from 'fast-check';
import { backoffDelayMs } from '@app/clock';
import {
  DEFAULT_MAX_ATTEMPTS,
  RETRY_POLICY,
  honoursRetryAfter,
  isRetryableStatus,
  parseRetryAfterMs,
} from './retry-policy';

const NOW = Date.UTC(2026, 10, 27, 10, 0, 0);

describe('retry policy', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_MAX_ATTEMPTS).toBe(3);
    expect(RETRY_POLICY).toEqual({
      backoff: { baseMs: 250, capMs: 4000, jitter: 'full' },
      maxRetryAfterMs: 30_000,
      defaultRetryAfterSeconds: 5,
    });
  });

  describe('backoff', () => {
    const sut = (attempt: number, random?: () => number): number =>
      backoffDelayMs(RETRY_POLICY.backoff, attempt, random);

    it.each<[number, number]>([
      [1, 250],
      [2, 500],
      [3, 1000],
      [4, 2000],
      [5, 4000],
      [6, 4000],
      [50, 4000],
    ])('attempt %i: full jitter below a ceiling of %i ms', (attempt, ceiling) => {
      expect(sut(attempt, () => 0)).toBe(0);
      expect(sut(attempt, () => 0.5)).toBe(ceiling / 2);
      expect(sut(attempt, () => 0.999_999_9)).toBe(ceiling - 1);
    });

    it('stays within [0, min(cap, base * 2^(attempt-1))) for any attempt and random value', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 10_000 }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          (attempt, random) => {
            const delay = sut(attempt, () => random);
            const ceiling = Math.min(4000, 250 * 2 ** Math.min(attempt - 1, 30));
            return Number.isInteger(delay) && delay >= 0 && delay < ceiling;
          },
        ),
      );
    });

    it('uses Math.random by default', () => {
      expect(sut(1)).toBeGreaterThanOrEqual(0);
      expect(sut(1)).toBeLessThan(250);
    });
  });

  it.each<[number, boolean, boolean]>([
    [429, true, true],
    [500, true, false],
    [502, true, false],
    [503, true, true],
    [504, true, false],
    [599, true, false],
    [400, false, false],
    [401, false, false],
    [403, false, false],
    [404, false, false],
    [302, false, false],
    [200, false, false],
  ])('status %i: retryable %p, honours Retry-After %p', (status, retryable, honours) => {
    expect(isRetryableStatus(status)).toBe(retryable);
    expect(honoursRetryAfter(status)).toBe(honours);
  });

  describe('parseRetryAfterMs', () => {
    it.each<[string, string | null | undefined, number | undefined]>([
      ['delta-seconds', '1', 1000],
      ['zero', '0', 0],
      ['padded delta-seconds', ' 120 ', 120_000],
      ['an IMF-fixdate', 'Fri, 27 Nov 2026 10:01:30 GMT', 90_000],
      ['an RFC 850 date', 'Friday, 27-Nov-26 10:00:02 GMT', 2000],
      ['an asctime date (UTC by definition)', 'Fri Nov 27 10:00:05 2026', 5000],
      ['an asctime date with a one-digit day', 'Tue Dec  1 10:00:00 2026', 4 * 86_400_000],
      ['a date in the past', 'Fri, 27 Nov 2026 09:00:00 GMT', 0],
      ['absent (null)', null, undefined],
      ['absent (undefined)', undefined, undefined],
      ['empty', '', undefined],
      ['words', 'soon', undefined],
      ['negative', '-1', undefined],
      ['a fraction', '1.5', undefined],
      ['a date without a zone', '2026-11-27T10:00:05', undefined],
    ])('reads %s', (_case, header, expected) => {
      expect(parseRetryAfterMs(header, NOW)).toBe(expected);
    });
  });
});
