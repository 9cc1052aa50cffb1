import {
  FAILED_AUTH_LIMIT,
  FAILED_AUTH_MAX_SOURCES,
  FAILED_AUTH_WINDOW_MS,
  FailedAuthLimiter,
} from './failed-auth.limiter';
import { TestClock } from '../../../test/support/clock';

const SOURCE = '203.0.113.7';

describe('FailedAuthLimiter', () => {
  let clock: TestClock;
  let sut: FailedAuthLimiter;

  const fail = (source: string, times: number): void => {
    for (let i = 0; i < times; i++) sut.recordFailure(source);
  };

  beforeEach(() => {
    clock = new TestClock();
    sut = new FailedAuthLimiter(clock);
  });

  it('has the documented limits', () => {
    expect([FAILED_AUTH_LIMIT, FAILED_AUTH_WINDOW_MS, FAILED_AUTH_MAX_SOURCES]).toEqual([
      10, 60_000, 10_000,
    ]);
  });

  it.each([
    [0, 0],
    [1, 0],
    [FAILED_AUTH_LIMIT - 1, 0],
    [FAILED_AUTH_LIMIT, 60],
    [FAILED_AUTH_LIMIT + 5, 60],
  ])('after %i failures at once the source waits %i s', (failures, wait) => {
    fail(SOURCE, failures);

    expect(sut.retryAfterSeconds(SOURCE)).toBe(wait);
  });

  it.each([
    [0, 60],
    [1, 60],
    [999, 60],
    [1_000, 59],
    [30_000, 30],
    [59_001, 1],
    [59_999, 1],
    [60_000, 0],
    [120_000, 0],
  ])('%i ms after the window opened, a limited source waits %i s', async (elapsed, wait) => {
    fail(SOURCE, FAILED_AUTH_LIMIT);

    await clock.advance(elapsed);

    expect(sut.retryAfterSeconds(SOURCE)).toBe(wait);
  });

  it('counts from the first failure: failures late in a window do not extend it', async () => {
    sut.recordFailure(SOURCE);
    await clock.advance(50_000);
    fail(SOURCE, FAILED_AUTH_LIMIT - 1);

    expect(sut.retryAfterSeconds(SOURCE)).toBe(10);
  });

  it('starts a fresh window once the old one has expired', async () => {
    fail(SOURCE, FAILED_AUTH_LIMIT);
    await clock.advance(FAILED_AUTH_WINDOW_MS);

    fail(SOURCE, FAILED_AUTH_LIMIT - 1);
    expect(sut.retryAfterSeconds(SOURCE)).toBe(0);

    sut.recordFailure(SOURCE);
    expect(sut.retryAfterSeconds(SOURCE)).toBe(60);
  });

  it('does not carry failures of an expired window over', async () => {
    fail(SOURCE, FAILED_AUTH_LIMIT - 1);
    await clock.advance(FAILED_AUTH_WINDOW_MS);
    sut.recordFailure(SOURCE);

    expect(sut.retryAfterSeconds(SOURCE)).toBe(0);
  });

  it('keeps sources independent', () => {
    fail(SOURCE, FAILED_AUTH_LIMIT);
    fail('198.51.100.1', FAILED_AUTH_LIMIT - 1);

    expect([
      sut.retryAfterSeconds(SOURCE),
      sut.retryAfterSeconds('198.51.100.1'),
      sut.retryAfterSeconds('2001:db8::1'),
    ]).toEqual([60, 0, 0]);
  });

  it(`tracks at most ${FAILED_AUTH_MAX_SOURCES} sources, forgetting the oldest first`, () => {
    fail(SOURCE, FAILED_AUTH_LIMIT);
    fail('second-oldest', FAILED_AUTH_LIMIT);
    for (let i = 2; i < FAILED_AUTH_MAX_SOURCES; i++) sut.recordFailure(`flood-${i}`);

    // Exactly at the bound: nothing forgotten yet.
    expect(sut.retryAfterSeconds(SOURCE)).toBe(60);

    sut.recordFailure('one-too-many');

    expect([sut.retryAfterSeconds(SOURCE), sut.retryAfterSeconds('second-oldest')]).toEqual([
      0, 60,
    ]);
    // The map really is bounded: the evicted source starts from scratch.
    sut.recordFailure(SOURCE);
    expect(sut.retryAfterSeconds('second-oldest')).toBe(0);
  });
});
