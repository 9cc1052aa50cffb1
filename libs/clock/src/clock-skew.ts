import type { Clock } from './clock';

/**
 * A wall clock further than this from the shared store's is reported (logged once, in
 * /health/ready, in token_vendor_clock_skew_seconds). Below it, measurement noise (half a round
 * trip) and ordinary NTP drift; above it, a clock set wrong.
 */
export const CLOCK_SKEW_TOLERANCE_MS = 2_000;

export const CLOCK_SKEW = Symbol('CLOCK_SKEW');

/**
 * How far this replica's wall clock is from the fleet's reference clock (Redis `TIME`), as last
 * measured. Nothing decides a token's life by it (lifetimes are monotonic, see Clock); it
 * corrects the few wall-time comparisons with other parties (a JWT's `exp`) and is reported.
 */
export class ClockSkew {
  private measured: number | undefined;

  /** Wall minus reference, ms; undefined until measured (or without a reference: memory store). */
  get offsetMs(): number | undefined {
    return this.measured;
  }

  record(offsetMs: number): void {
    this.measured = offsetMs;
  }

  /** Whether the last measurement is beyond CLOCK_SKEW_TOLERANCE_MS. */
  get skewed(): boolean {
    return this.measured !== undefined && Math.abs(this.measured) > CLOCK_SKEW_TOLERANCE_MS;
  }

  /** The reference clock's time now, as well as this replica knows it (its wall clock if unmeasured). */
  referenceNow(clock: Clock): number {
    return clock.now() - (this.measured ?? 0);
  }
}
