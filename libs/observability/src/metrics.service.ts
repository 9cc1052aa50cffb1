import { Inject, Injectable, Optional } from '@nestjs/common';
import { CLOCK, CLOCK_SKEW, type Clock, type ClockSkew } from '@app/clock';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { UpstreamAttempt } from '@app/upstream';
import { buildVersion } from './build-info';

/** A held token as the TTL gauge sees it. */
export interface HeldTokenSample {
  clientId: string;
  environment: string;
  expiresAt: number;
}

/** Outcome of a `GET /tokens` answer, by status: a fixed set of words, never request text. */
export type TokenRequestOutcome =
  | 'served'
  | 'invalid_request'
  | 'unauthorized'
  | 'unknown_client'
  | 'too_many_requests'
  | 'upstream_rejected'
  | 'upstream_unavailable'
  | 'error';

/** Why a request was refused before it reached its handler (401, 429). */
export type AuthFailureReason = 'missing_credentials' | 'invalid_credentials' | 'rate_limited';

/**
 * `GET /tokens` latency buckets: a hit from the replica's copy takes well under a millisecond,
 * a fetch from the IdP tens of milliseconds to seconds (up to `timeoutMs` × attempts).
 */
export const TOKEN_REQUEST_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * Every metric of the service, on a registry of its own (so several app instances can live in
 * one test process). Labels are client ids, environment names and fixed outcome words:
 * never a secret, key or token.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private heldTokens: () => Iterable<HeldTokenSample> = () => [];

  /**
   * Served requests not yet added to `tokenRequests`, by environment and client id: counted here
   * on the hot path (two map lookups) and added when the counter is read (a scrape), instead
   * of prom-client hashing three labels on every cache hit (bench/results.md).
   */
  private readonly servedPending = new Map<string, Map<string, number>>();

  readonly tokenRequests = new Counter({
    name: 'token_vendor_token_requests_total',
    help: 'GET /tokens requests by client, environment and outcome.',
    labelNames: ['client_id', 'environment', 'outcome'] as const,
    registers: [this.registry],
    collect: () => this.addPendingServed(),
  });

  readonly tokenRequestDuration = new Histogram({
    name: 'token_vendor_token_request_duration_seconds',
    help: 'GET /tokens answer latency by outcome (served, unknown_client, upstream_unavailable, ...).',
    labelNames: ['outcome'] as const,
    buckets: TOKEN_REQUEST_BUCKETS,
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'token_vendor_auth_failures_total',
    help: 'Requests refused with 401 (missing or invalid credentials) or 429 (rate limited).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** One child per outcome, made once: the hot path skips prom-client's label hashing. */
  private readonly durationByOutcome = new Map<string, { observe(seconds: number): void }>();

  readonly upstreamRequests = new Counter({
    name: 'token_vendor_upstream_requests_total',
    help: 'Token endpoint attempts by client, environment and outcome.',
    labelNames: ['client_id', 'environment', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly upstreamDuration = new Histogram({
    name: 'token_vendor_upstream_request_duration_seconds',
    help: 'Token endpoint attempt latency.',
    labelNames: ['environment', 'outcome'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly refreshes = new Counter({
    name: 'token_vendor_refreshes_total',
    help: 'Successful proactive refreshes by client and environment.',
    labelNames: ['client_id', 'environment'] as const,
    registers: [this.registry],
  });

  readonly refreshFailures = new Counter({
    name: 'token_vendor_refresh_failures_total',
    help: 'Failed proactive refreshes by cause (bad_status, bad_answer, timeout, network, rejected, ...).',
    labelNames: ['client_id', 'environment', 'cause'] as const,
    registers: [this.registry],
  });

  readonly rejectionReports = new Counter({
    name: 'token_vendor_rejection_reports_total',
    help: 'Downstream rejection reports by outcome (refreshed, joined, not_current, rate_limited).',
    labelNames: ['client_id', 'environment', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly singleFlightWaits = new Counter({
    name: 'token_vendor_single_flight_waits_total',
    help: 'Requests that waited for a fetch already running (in this replica or another).',
    labelNames: ['scope'] as const,
    registers: [this.registry],
  });

  readonly storeErrors = new Counter({
    name: 'token_vendor_store_errors_total',
    help: 'Token store operations that failed (Redis down, timeout, unreadable value).',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly secretRotations = new Counter({
    name: 'token_vendor_secret_rotations_total',
    help: 'New client secrets tried against the IdP, by outcome (adopted, refused).',
    labelNames: ['client_id', 'environment', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor(@Inject(CLOCK) clock: Clock, @Optional() @Inject(CLOCK_SKEW) skew?: ClockSkew) {
    new Gauge({
      name: 'token_vendor_clock_skew_seconds',
      help: "This replica's wall clock minus Redis's (TIME), as last measured; absent until measured and with the memory store.",
      registers: [this.registry],
      collect() {
        this.reset();
        const offset = skew?.offsetMs;
        if (offset !== undefined) this.set(offset / 1000);
      },
    });
    const held = (): Iterable<HeldTokenSample> => this.heldTokens();
    new Gauge({
      name: 'token_vendor_token_ttl_seconds',
      help: 'Time left on each token this replica holds.',
      labelNames: ['client_id', 'environment'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const now = clock.monotonic();
        for (const t of held()) {
          this.set(
            { client_id: t.clientId, environment: t.environment },
            Math.max(0, (t.expiresAt - now) / 1000),
          );
        }
      },
    });
    new Gauge({
      name: 'token_vendor_build_info',
      help: 'Always 1; the labels name the running version and Node.js.',
      labelNames: ['version', 'node'] as const,
      registers: [this.registry],
    }).set({ version: buildVersion(), node: process.version }, 1);
    // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...), as stock
    // dashboards and alerts expect them.
    collectDefaultMetrics({ register: this.registry });
  }

  /** One `GET /tokens` answered with a token: `tokenRequests{outcome="served"}`, added at the next read. */
  countServed(clientId: string, environment: string): void {
    let byClientId = this.servedPending.get(environment);
    if (byClientId === undefined)
      this.servedPending.set(environment, (byClientId = new Map<string, number>()));
    byClientId.set(clientId, (byClientId.get(clientId) ?? 0) + 1);
  }

  private addPendingServed(): void {
    for (const [environment, byClientId] of this.servedPending) {
      for (const [clientId, count] of byClientId) {
        this.tokenRequests.inc({ client_id: clientId, environment, outcome: 'served' }, count);
      }
    }
    this.servedPending.clear();
  }

  /** One `GET /tokens` answer: its latency, by outcome. */
  observeTokenRequest(outcome: TokenRequestOutcome, seconds: number): void {
    let child = this.durationByOutcome.get(outcome);
    if (!child) {
      child = this.tokenRequestDuration.labels({ outcome });
      this.durationByOutcome.set(outcome, child);
    }
    child.observe(seconds);
  }

  /** The token cache registers how to list what it holds (read at scrape time). */
  observeHeldTokens(source: () => Iterable<HeldTokenSample>): void {
    this.heldTokens = source;
  }

  onAttempt(event: UpstreamAttempt): void {
    this.upstreamRequests.inc({
      client_id: event.clientId,
      environment: event.environment,
      outcome: event.outcome,
    });
    this.upstreamDuration.observe(
      { environment: event.environment, outcome: event.outcome },
      event.durationMs / 1000,
    );
  }
}
