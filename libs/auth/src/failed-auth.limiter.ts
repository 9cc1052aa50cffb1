import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';

/** A source may fail this many authentications per window before it is refused. */
export const FAILED_AUTH_LIMIT = 10;
export const FAILED_AUTH_WINDOW_MS = 60_000;
/** Bound on tracked sources, so a flood of spoofed sources cannot exhaust memory. */
export const FAILED_AUTH_MAX_SOURCES = 10_000;

interface Window {
  startedAt: number;
  failures: number;
}

/**
 * Limits failed authentications per source (fixed window, in this replica's memory: the
 * check must never depend on Redis). Successful requests are never counted or slowed.
 */
@Injectable()
export class FailedAuthLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(@Inject(CLOCK) private readonly clock: Clock) {}

  /** Seconds the source must wait, or 0 when it may try. */
  retryAfterSeconds(source: string): number {
    const window = this.current(source);
    if (!window || window.failures < FAILED_AUTH_LIMIT) return 0;
    return Math.ceil((window.startedAt + FAILED_AUTH_WINDOW_MS - this.clock.monotonic()) / 1000);
  }

  recordFailure(source: string): void {
    const window = this.current(source);
    if (window) {
      window.failures += 1;
      return;
    }
    if (this.windows.size >= FAILED_AUTH_MAX_SOURCES) this.evictOldest();
    this.windows.set(source, { startedAt: this.clock.monotonic(), failures: 1 });
  }

  private current(source: string): Window | undefined {
    const window = this.windows.get(source);
    if (window && this.clock.monotonic() - window.startedAt >= FAILED_AUTH_WINDOW_MS) {
      this.windows.delete(source);
      return undefined;
    }
    return window;
  }

  private evictOldest(): void {
    // Maps iterate in insertion order: the first entry is the oldest window.
    const oldest = this.windows.keys().next();
    if (!oldest.done) this.windows.delete(oldest.value);
  }
}
