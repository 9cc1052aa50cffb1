import type { Clock } from '@app/clock';

/**
 * A clock whose sleeps return at once (after moving time forward by the amount asked):
 * retry tests run in milliseconds and can still assert every delay the code asked for.
 */
export class RecordingClock implements Clock {
  readonly sleeps: number[] = [];

  constructor(private current = Date.UTC(2026, 10, 27, 10, 0, 0)) {}

  now(): number {
    return this.current;
  }

  monotonic(): number {
    return this.current;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.current += ms;
    await Promise.resolve();
  }
}
