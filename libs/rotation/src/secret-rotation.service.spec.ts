import { backoffDelayMs } from '@app/clock';
import { CANDIDATE_BACKOFF } from './secret-rotation.service';

describe('secret candidate backoff', () => {
  it('waits 5 s after the first refusal, doubling up to 5 min, with no jitter', () => {
    const waits = Array.from({ length: 9 }, (_, i) =>
      backoffDelayMs(CANDIDATE_BACKOFF, i + 1, () => 0.5),
    );

    expect(waits).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000,
    ]);
  });
});
