import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { CLOCK, CLOCK_SKEW, CLOCK_SKEW_TOLERANCE_MS, type Clock, type ClockSkew } from '@app/clock';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import { TOKEN_STORE, type TokenStore } from './token-store';

/** How often the skew is measured besides readiness probes (each probe measures too). */
export const CLOCK_SKEW_CHECK_INTERVAL_MS = 30_000;
/** The longest the start waits for the first measurement. */
export const CLOCK_SKEW_FIRST_MEASURE_MS = 1_000;
/**
 * A measurement whose round trip took longer than this is too uncertain to keep: its error is up
 * to half the round trip, and it corrects the send time of late writes (redis-token.store.ts).
 */
export const CLOCK_SKEW_MAX_ROUND_TRIP_MS = 100;

/** What readiness shows of this replica's wall clock against the fleet's reference. */
export interface ClockSkewReport {
  /** `redis`: Redis `TIME` is the reference; `none`: the memory store, this process only. */
  reference: 'redis' | 'none';
  /** `in-sync` within the tolerance, `skewed` beyond it, `unmeasured` before a measurement. */
  state?: 'in-sync' | 'skewed' | 'unmeasured';
  /** This replica's wall clock minus the reference, seconds (ms precision). */
  skewSeconds?: number;
  toleranceSeconds?: number;
}

/**
 * Measures how far this replica's wall clock is from Redis's (`TIME`, half a round trip
 * allowed for). Nothing about a token's life depends on it: lifetimes are kept on the monotonic
 * clock and in Redis's own time (README "Which clock decides what"). A skew beyond
 * CLOCK_SKEW_TOLERANCE_MS is logged once (and once again when it is gone), shown in
 * /health/ready and in token_vendor_clock_skew_seconds; it never fails readiness.
 */
@Injectable()
export class ClockSkewMonitor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Clock');
  private readonly remeasure: PeriodicTask;
  private reportedSkewed = false;

  constructor(
    @Inject(TOKEN_STORE) private readonly store: TokenStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(CLOCK_SKEW) private readonly skew: ClockSkew,
    tasks: PeriodicTasks,
  ) {
    this.remeasure = tasks.create('clock skew measurement', CLOCK_SKEW_CHECK_INTERVAL_MS, () =>
      this.measure(),
    );
  }

  /**
   * The first measurement is taken before the service serves (bounded: a Redis that does not
   * answer delays the start by at most CLOCK_SKEW_FIRST_MEASURE_MS), so a JWT's `exp` is already
   * compared with the corrected time by the first fetch.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.store.kind !== 'redis') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.measure(),
      new Promise((resolve) => {
        timer = setTimeout(resolve, CLOCK_SKEW_FIRST_MEASURE_MS);
      }),
    ]);
    clearTimeout(timer);
    this.remeasure.start();
  }

  onApplicationShutdown(): void {
    this.remeasure.stop();
  }

  /** Measures now (a failed or too slow measurement keeps the last one) and reports. */
  async measure(): Promise<ClockSkewReport> {
    if (this.store.kind !== 'redis') return { reference: 'none' };
    const sentAt = this.clock.monotonic();
    const wallAtSend = this.clock.now();
    try {
      const reference = await this.store.referenceTime();
      const roundTrip = this.clock.monotonic() - sentAt;
      if (reference !== undefined && roundTrip <= CLOCK_SKEW_MAX_ROUND_TRIP_MS) {
        this.record(wallAtSend + roundTrip / 2 - reference);
      }
    } catch {
      // The store is down: readiness reports that; the last measurement stays.
    }
    return this.report();
  }

  report(): ClockSkewReport {
    if (this.store.kind !== 'redis') return { reference: 'none' };
    const offset = this.skew.offsetMs;
    return {
      reference: 'redis',
      state: offset === undefined ? 'unmeasured' : this.skew.skewed ? 'skewed' : 'in-sync',
      ...(offset === undefined ? {} : { skewSeconds: Math.round(offset) / 1000 }),
      toleranceSeconds: CLOCK_SKEW_TOLERANCE_MS / 1000,
    };
  }

  private record(offsetMs: number): void {
    this.skew.record(offsetMs);
    if (this.skew.skewed && !this.reportedSkewed) {
      this.reportedSkewed = true;
      this.logger.warn({
        msg: "this replica's wall clock disagrees with Redis's; token lifetimes do not depend on it, but fix the time source",
        skewSeconds: Math.round(offsetMs) / 1000,
        toleranceSeconds: CLOCK_SKEW_TOLERANCE_MS / 1000,
      });
    } else if (!this.skew.skewed && this.reportedSkewed) {
      this.reportedSkewed = false;
      this.logger.log({
        msg: "this replica's wall clock agrees with Redis's again",
        skewSeconds: Math.round(offsetMs) / 1000,
      });
    }
  }
}
