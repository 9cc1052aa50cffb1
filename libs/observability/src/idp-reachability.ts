import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import type { AttemptOutcome, UpstreamAttempt } from '@app/upstream';

/** An environment's IdP as the readiness body names it (README "Health"). */
export interface IdpState {
  /**
   * `up`: its last answer came (a token, or an OAuth refusal: the IdP works, the credentials
   * do not); `down`: the last attempt timed out, failed to connect, or got a 5xx or a bad answer;
   * `unknown`: not asked since this replica started.
   */
  state: 'up' | 'down' | 'unknown';
  lastOutcome?: AttemptOutcome;
  /** ISO 8601 times of the last attempt and of the last answer that showed the IdP up. */
  lastAttemptAt?: string;
  lastUpAt?: string;
}

/** Outcomes that show the IdP answering as an IdP (a refusal is the IdP working). */
const ANSWERED: ReadonlySet<AttemptOutcome> = new Set(['ok', 'rejected']);

/**
 * Each environment's IdP as the token requests last found it, for the readiness body: fed by
 * every attempt (UpstreamTelemetry), one entry per environment. Never a reason to fail
 * readiness: an IdP is shared by every replica (README "Health").
 */
@Injectable()
export class IdpReachability {
  private readonly lastSeen = new Map<
    string,
    { outcome: AttemptOutcome; at: number; upAt?: number }
  >();

  constructor(@Inject(CLOCK) private readonly clock: Clock) {}

  record(event: UpstreamAttempt): void {
    const at = this.clock.now();
    const upAt = ANSWERED.has(event.outcome) ? at : this.lastSeen.get(event.environment)?.upAt;
    this.lastSeen.set(event.environment, { outcome: event.outcome, at, upAt });
  }

  stateOf(environment: string): IdpState {
    const seen = this.lastSeen.get(environment);
    if (seen === undefined) return { state: 'unknown' };
    return {
      state: ANSWERED.has(seen.outcome) ? 'up' : 'down',
      lastOutcome: seen.outcome,
      lastAttemptAt: new Date(seen.at).toISOString(),
      ...(seen.upAt !== undefined ? { lastUpAt: new Date(seen.upAt).toISOString() } : {}),
    };
  }
}
