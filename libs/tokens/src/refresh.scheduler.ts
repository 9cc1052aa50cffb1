import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { CLOCK, backoffDelayMs, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import { DomainError, UpstreamRejectedError, UpstreamUnavailableError } from '@app/errors';
import { MetricsService } from '@app/observability';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import { laterToken, type StoredToken } from '@app/token-store';
import { DueQueue } from './due-queue';
import { REFRESH_BACKOFF, REJECTED_RETRY_MS, refreshDueAt } from './refresh-policy';
import { TokenSource } from './token-source';

/** How often the scheduler looks at its queue; the work per tick is only what is due. */
export const REFRESH_TICK_MS = 250;
/** Refreshes running at once on one replica, so a wave of due tokens cannot flood the IdP. */
export const MAX_CONCURRENT_REFRESHES = 8;
/** Start-up warming is spread over this window. */
export const WARM_SPREAD_MS = 2_000;

export const RANDOM = Symbol('RANDOM');
/** false turns proactive refresh off (focused tests of the request path); on by default. */
export const REFRESH_ENABLED = Symbol('REFRESH_ENABLED');

/** What the admin view and metrics show of each client's refresh. */
export interface RefreshState {
  /** Wall-clock ms (a stamp for display). */
  lastRefreshAt?: number;
  /** `at`: wall-clock ms (a stamp for display). */
  lastError?: { code: string; message: string; at: number };
  consecutiveFailures: number;
  /** Monotonic ms (the schedule runs on it; shown through wallTimeOf). */
  nextRefreshAt?: number;
}

/**
 * Refreshes each token before it expires. Every replica schedules every token it knows at a
 * jittered point past `refresh.ratio` of its life; the first replica there takes the lock and
 * fetches, the others find the newer token in the store and re-schedule on it. Failures back
 * off exponentially with jitter; a refused secret waits minutes, not milliseconds.
 */
@Injectable()
export class RefreshScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RefreshScheduler.name);
  private readonly queue = new DueQueue();
  private readonly states = new Map<string, RefreshState>();
  private running = 0;
  private stopped = false;
  private readonly ticker: PeriodicTask;

  constructor(
    private readonly config: ConfigService,
    private readonly tokens: TokenSource,
    @Inject(CLOCK) private readonly clock: Clock,
    tasks: PeriodicTasks,
    @Optional() @Inject(RANDOM) private readonly random: () => number = Math.random,
    @Optional() @Inject(REFRESH_ENABLED) private readonly enabled: boolean = true,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    this.ticker = tasks.create('token refresh', REFRESH_TICK_MS, () => this.tick());
    if (enabled) tokens.onAdopt((client, token) => this.scheduleFor(client, token));
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.warmAll();
    this.ticker.start();
  }

  onApplicationShutdown(): void {
    this.stopped = true;
    this.ticker.stop();
  }

  /** Schedules every configured client soon (spread), so tokens are held before anyone asks. */
  warmAll(): void {
    for (const client of this.config.service.clients) {
      if (!this.queue.dueAt(client.key)) {
        this.queue.schedule(
          client.key,
          this.clock.monotonic() + Math.floor(this.random() * WARM_SPREAD_MS),
        );
      }
    }
  }

  state(clientKey: string): RefreshState {
    const state = this.states.get(clientKey) ?? { consecutiveFailures: 0 };
    return { ...state, nextRefreshAt: this.queue.dueAt(clientKey) };
  }

  tick(): void {
    void this.runDue();
  }

  /** Starts the refreshes that are due (bounded); resolves when they have finished. */
  async runDue(): Promise<void> {
    if (this.stopped || !this.enabled) return;
    const slots = MAX_CONCURRENT_REFRESHES - this.running;
    if (slots <= 0) return;
    const keys = this.queue.popDue(this.clock.monotonic(), slots);
    // A finished refresh frees its slot for the next due token at once, not at the next tick:
    // a start-up wave of thousands of clients is not throttled by the tick interval.
    await Promise.all(keys.map((key) => this.refresh(key).then(() => this.runDue())));
  }

  private scheduleFor(client: ClientConfig, token: StoredToken): void {
    this.queue.schedule(
      client.key,
      refreshDueAt(token, this.config.service.refresh.ratio, this.random()),
    );
  }

  private async refresh(key: string): Promise<void> {
    const client = this.config.clientByKey(key);
    if (!client) {
      this.states.delete(key); // removed by a reload
      return;
    }
    this.running++;
    try {
      // Another replica may already have refreshed: adopting its token re-schedules us.
      const shared = await this.tokens.shared(client);
      const current = laterToken(this.tokens.held(client), shared);
      if (
        current &&
        this.clock.monotonic() < refreshDueAt(current, this.config.service.refresh.ratio, 0) - 1 &&
        this.queue.dueAt(key)
      ) {
        return;
      }
      const token = await this.tokens.obtain(client, current?.expiresAt ?? 0, {
        background: true,
      });
      this.metrics?.refreshes.inc({ client_id: client.clientId, environment: client.environment });
      this.states.set(key, {
        consecutiveFailures: 0,
        lastRefreshAt: this.clock.now(),
        lastError: this.states.get(key)?.lastError,
      });
      if (!this.queue.dueAt(key)) this.scheduleFor(client, token);
    } catch (e) {
      this.recordFailure(client, e);
    } finally {
      this.running--;
    }
  }

  private recordFailure(client: ClientConfig, e: unknown): void {
    const previous = this.states.get(client.key);
    const failures = (previous?.consecutiveFailures ?? 0) + 1;
    const code = e instanceof DomainError ? e.code : 'error';
    this.states.set(client.key, {
      ...previous,
      consecutiveFailures: failures,
      lastError: {
        code,
        message: e instanceof DomainError ? e.message : 'unexpected error',
        at: this.clock.now(),
      },
    });
    this.metrics?.refreshFailures.inc({
      client_id: client.clientId,
      environment: client.environment,
      cause: failureCause(e),
    });
    const delay =
      e instanceof UpstreamRejectedError
        ? REJECTED_RETRY_MS
        : backoffDelayMs(REFRESH_BACKOFF, failures, this.random);
    this.queue.schedule(client.key, this.clock.monotonic() + delay);
    this.logger.warn({
      msg: 'token refresh failed',
      environment: client.environment,
      clientId: client.clientId,
      error: code,
      failures,
      retryInMs: delay,
    });
  }
}

/** The metric label of a failed refresh. */
function failureCause(e: unknown): string {
  if (e instanceof UpstreamRejectedError) return 'rejected';
  if (e instanceof UpstreamUnavailableError) return e.reason;
  return 'error';
}
