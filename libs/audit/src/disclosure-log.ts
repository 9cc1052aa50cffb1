import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import { AuditLog } from './audit-log';

/** Repeats are summed for at most this long before their summary line is written. */
export const DISCLOSURE_SUMMARY_INTERVAL_MS = 10_000;
/** A summary names at most this many source addresses; the rest are counted. */
export const MAX_SOURCES_PER_SUMMARY = 16;
/**
 * Disclosures remembered per replica. Past this many, everything is summarized and forgotten
 * (the next request of each is then a first disclosure again: more lines, never fewer).
 */
export const MAX_TRACKED_DISCLOSURES = 50_000;

/** A token handed to a caller. */
export interface Disclosure {
  requestId: string | undefined;
  caller: string;
  clientId: string;
  environment: string;
  /** The short fingerprint of the token (never the token). */
  tokenFingerprint: string;
  /** When the token expires, on this process's monotonic clock: its record is forgotten then. */
  expiresAt: number;
  /** Whole seconds left, as answered. */
  expiresIn: number;
  /** The caller's address, when known. */
  source: string | undefined;
  /**
   * What a JWT caller's token named (workload, pod, pod uid: README "Callers without keys"),
   * written on its lines; each workload's disclosures are counted apart.
   */
  presented?: PresentedOnLine;
}

/** A JWT caller's verified workload claims, as written on audit lines. */
export interface PresentedOnLine {
  readonly workload: string;
  readonly pod?: string;
  readonly podUid?: string;
}

interface Repeats {
  caller: string;
  presented: PresentedOnLine | undefined;
  clientId: string;
  environment: string;
  tokenFingerprint: string;
  expiresAt: number;
  /** Repeats since the last summary. */
  count: number;
  firstAt: number;
  lastAt: number;
  sources: Set<string>;
  sourcesOmitted: number;
}

/**
 * The audit of served tokens: disclosures, not repeats (see the README, "Logs and metrics").
 * The first time a caller receives a given token on this replica, its audit line is written
 * at once, before the answer leaves, so no disclosure can be lost to a crash. Further
 * requests of the same caller for the same token (client, environment, fingerprint) are
 * counted in memory and written as one summary line per key at least every
 * DISCLOSURE_SUMMARY_INTERVAL_MS and when the application shuts down; a crash loses at most
 * that much of the counts, never a disclosure. A new token after a refresh is a new
 * disclosure. Refusals and errors do not come here: they are written one by one.
 */
@Injectable()
export class DisclosureLog implements OnApplicationShutdown {
  private readonly tracked = new Map<string, Repeats>();
  private readonly summaries: PeriodicTask;
  private closed = false;

  constructor(
    private readonly audit: AuditLog,
    @Inject(CLOCK) private readonly clock: Clock,
    tasks: PeriodicTasks,
  ) {
    this.summaries = tasks
      .create('disclosure summaries', DISCLOSURE_SUMMARY_INTERVAL_MS, () => this.flush())
      .start();
  }

  served(d: Disclosure): void {
    // The expiry is in the key too: two tokens sharing a short fingerprint stay apart.
    const key =
      `${d.caller}\n${d.environment}\n${d.clientId}\n${d.tokenFingerprint}\n${d.expiresAt}` +
      (d.presented === undefined ? '' : `\n${JSON.stringify(d.presented)}`);
    const repeats = this.tracked.get(key);
    if (repeats !== undefined && !this.closed) {
      const now = this.clock.now();
      if (repeats.count++ === 0) repeats.firstAt = now;
      repeats.lastAt = now;
      if (d.source !== undefined && !repeats.sources.has(d.source)) {
        if (repeats.sources.size < MAX_SOURCES_PER_SUMMARY) repeats.sources.add(d.source);
        else repeats.sourcesOmitted++;
      }
      return;
    }
    this.audit.write({
      msg: 'token request',
      requestId: d.requestId,
      caller: d.caller,
      ...d.presented,
      clientId: d.clientId,
      environment: d.environment,
      outcome: 'served',
      tokenFingerprint: d.tokenFingerprint,
      expiresIn: d.expiresIn,
      source: d.source,
    });
    if (this.closed) return;
    if (this.tracked.size >= MAX_TRACKED_DISCLOSURES) this.flush(true);
    this.tracked.set(key, {
      caller: d.caller,
      presented: d.presented,
      clientId: d.clientId,
      environment: d.environment,
      tokenFingerprint: d.tokenFingerprint,
      expiresAt: d.expiresAt,
      count: 0,
      firstAt: 0,
      lastAt: 0,
      sources: new Set(),
      sourcesOmitted: 0,
    });
  }

  /**
   * Writes one summary line per key repeated since the last flush, and forgets the keys of
   * expired tokens (all keys with `forgetAll`).
   */
  flush(forgetAll = false): void {
    const now = this.clock.monotonic();
    for (const [key, r] of this.tracked) {
      if (r.count > 0) {
        this.audit.write({
          msg: 'token disclosures repeated',
          requestId: undefined,
          caller: r.caller,
          ...r.presented,
          clientId: r.clientId,
          environment: r.environment,
          outcome: 'served',
          tokenFingerprint: r.tokenFingerprint,
          count: r.count,
          firstAt: new Date(r.firstAt).toISOString(),
          lastAt: new Date(r.lastAt).toISOString(),
          sources: [...r.sources],
          sourcesOmitted: r.sourcesOmitted > 0 ? r.sourcesOmitted : undefined,
        });
        r.count = 0;
        r.sources.clear();
        r.sourcesOmitted = 0;
      }
      if (forgetAll || r.expiresAt <= now) this.tracked.delete(key);
    }
  }

  /**
   * After the HTTP server has closed (Nest runs this hook after draining in-flight requests):
   * the last counts are written and any later disclosure is written one by one.
   */
  onApplicationShutdown(): void {
    this.summaries.stop();
    this.flush(true);
    this.closed = true;
  }
}
