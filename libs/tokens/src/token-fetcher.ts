import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { MetricsService } from '@app/observability';
import { randomUUID } from 'node:crypto';
import { CLOCK, wallTimeOf, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig, type EnvironmentConfig } from '@app/config';
import { PeriodicTasks } from '@app/periodic';
import { UpstreamRejectedError, UpstreamUnavailableError } from '@app/errors';
import { DEFAULT_MAX_ATTEMPTS, OAuthClient, RETRY_POLICY } from '@app/upstream';
import {
  EXPIRY_TIE_MS,
  REFRESH_LOCK,
  type RefreshLock,
  type StoredToken,
  type TokenRef,
} from '@app/token-store';
import { SecretCandidates } from './secret-candidates';
import { SingleFlight } from './single-flight';
import { TokenCache } from './token-cache';

/** Slack added to the lock TTL beyond `timeoutMs × attempts`, for backoff between attempts. */
export const LOCK_SLACK_MS = 2_000;
/** How often a replica that lost the lock looks for the winner's token. */
export const LOCK_POLL_INTERVAL_MS = 50;
/**
 * After the IdP refused a client's credentials or scope, further requests for it get the
 * same answer for this long without calling the IdP: a wrong secret is not retried hot.
 */
export const REJECTION_HOLD_MS = 30_000;

/**
 * How long past twice its lock's life a waiter keeps waiting while the holder keeps extending
 * its lock: a live holder may honour a Retry-After of up to maxRetryAfterMs between each of its
 * attempts, and every replica fetching around it then would defeat the IdP's own limit.
 */
export const HOLDER_PATIENCE_MS = (DEFAULT_MAX_ATTEMPTS - 1) * RETRY_POLICY.maxRetryAfterMs;

/** How a fetch was asked for: by a caller waiting on it, or by the scheduler in the background. */
export interface ObtainOptions {
  /**
   * No caller waits: the lock is always tried, even when the last store operation failed (a
   * stale "store down" mark must not send a background refresh to the IdP around the lock).
   */
  background?: boolean;
}

/** The refresh lock of a client lives long enough for every attempt of one fetch. */
export function lockTtlMs(environment: Pick<EnvironmentConfig, 'timeoutMs'>): number {
  return environment.timeoutMs * DEFAULT_MAX_ATTEMPTS + LOCK_SLACK_MS;
}

/**
 * Obtains a token newer than the one a replica knows, with one IdP request for the whole
 * fleet: in-process single flight, then a Redis lock (`SET NX PX`, owner-checked release and
 * extension). The lock holder fetches and writes through the fenced store; the others poll
 * the store for its token, bounded by the lock's life. Without a store the replica fetches
 * directly (still single flight in-process).
 */
@Injectable()
export class TokenFetcher implements OnApplicationShutdown {
  private readonly logger = new Logger(TokenFetcher.name);
  private readonly flights = new SingleFlight<StoredToken>();
  private readonly heldLocks = new Map<string, { ref: TokenRef; owner: string }>();
  private readonly rejections = new Map<string, { at: number; error: UpstreamRejectedError }>();

  constructor(
    private readonly config: ConfigService,
    private readonly upstream: OAuthClient,
    private readonly cache: TokenCache,
    @Inject(REFRESH_LOCK) private readonly lock: RefreshLock,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly candidates: SecretCandidates,
    private readonly tasks: PeriodicTasks,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /**
   * A token that expires after `knownExpiresAt` (0 when none is known): fetched by this
   * replica, or by the replica holding the lock.
   */
  obtain(
    client: ClientConfig,
    knownExpiresAt = 0,
    options: ObtainOptions = {},
  ): Promise<StoredToken> {
    if (this.flights.isRunning(client.key))
      this.metrics?.singleFlightWaits.inc({ scope: 'replica' });
    return this.flights.run(client.key, () => this.coordinate(client, knownExpiresAt, options));
  }

  isFetching(client: ClientConfig): boolean {
    return this.flights.isRunning(client.key);
  }

  /** Forget a held rejection (after a secret or configuration change). */
  clearRejection(clientKey: string): void {
    this.rejections.delete(clientKey);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(
      [...this.heldLocks.values()].map(({ ref, owner }) =>
        this.lock.releaseLock(ref, owner).catch(() => undefined),
      ),
    );
  }

  private async coordinate(
    client: ClientConfig,
    knownExpiresAt: number,
    options: ObtainOptions,
  ): Promise<StoredToken> {
    const held = this.rejections.get(client.key);
    if (held && this.clock.monotonic() - held.at < REJECTION_HOLD_MS) throw held.error;
    const environment = this.environmentOf(client);
    const ttl = lockTtlMs(environment);
    // Past this, a holder that keeps its lock alive but never delivers is not waited for.
    const giveUpWaitingAt = this.clock.monotonic() + ttl * 2 + HOLDER_PATIENCE_MS;
    // Redis just failed (down or slow): no caller waits on it again; the lock is skipped. A
    // background refresh has no caller: it tries the lock (a lock-less refresh of one replica
    // while the others hold the lock was the flaky fleet test's second IdP request).
    const storeDown = (): boolean => !options.background && !this.cache.storeAvailable;
    if (storeDown()) return this.fetchAndSave(client, environment, false);

    for (;;) {
      const owner = randomUUID();
      let locked: boolean;
      try {
        locked = await this.lock.acquireLock(this.cache.refOf(client), owner, ttl);
      } catch {
        return this.fetchAndSave(client, environment, false); // no shared store: fetch directly
      }
      if (locked) return this.fetchUnderLock(client, environment, owner, ttl, knownExpiresAt);

      this.metrics?.singleFlightWaits.inc({ scope: 'fleet' });
      const theirs = await this.waitForNewer(client, knownExpiresAt, ttl, owner);
      if (theirs === 'lock-taken')
        return this.fetchUnderLock(client, environment, owner, ttl, knownExpiresAt);
      if (theirs) return theirs;
      // The store failed while waiting (an outage now, not a stale mark): fetch directly.
      if (!this.cache.storeAvailable || this.clock.monotonic() >= giveUpWaitingAt) {
        return this.fetchAndSave(client, environment, false);
      }
      // The lock expired without a new token (its holder died): try to take it.
    }
  }

  private async fetchUnderLock(
    client: ClientConfig,
    environment: EnvironmentConfig,
    owner: string,
    ttl: number,
    knownExpiresAt: number,
  ): Promise<StoredToken> {
    const ref = this.cache.refOf(client);
    this.heldLocks.set(client.key, { ref, owner });
    // Keep the lock while a slow IdP, backoff or Retry-After stretches the fetch. If it was
    // lost (this process stalled past its life and another replica took over), stop fetching:
    // the fleet must send the IdP one request per refresh.
    const lockLost = new AbortController();
    // It ticks through the drain: a fetch in flight at shutdown keeps its lock to the end.
    const watchdog = this.tasks
      .createThroughDrain('refresh lock extension', Math.max(100, Math.floor(ttl / 3)), () =>
        this.lock
          .extendLock(ref, owner, ttl)
          .then((held) => {
            if (!held) lockLost.abort(new Error('refresh lock lost'));
          })
          .catch(() => undefined),
      )
      .start();
    try {
      // Another replica may have finished just before we took the lock.
      const shared = await this.cache.shared(client);
      if (shared && expiresLater(shared, knownExpiresAt)) return shared;
      // Under the lock the write completes before the lock is released, so the replicas
      // waiting for it find the token and the IdP sees one request.
      return await this.fetchAndSave(client, environment, true, lockLost.signal);
    } catch (e) {
      if (!lockLost.signal.aborted) throw e;
      this.logger.warn({
        msg: 'refresh lock lost; using the token of the replica that took over',
        environment: client.environment,
        clientId: client.clientId,
      });
      const theirs = await this.cache.shared(client);
      if (theirs && expiresLater(theirs, knownExpiresAt)) return theirs;
      throw new UpstreamUnavailableError(
        'timeout',
        'the refresh was taken over by another replica',
      );
    } finally {
      watchdog.stop();
      this.heldLocks.delete(client.key);
      await this.lock.releaseLock(ref, owner).catch(() => undefined);
    }
  }

  /**
   * Polls the shared store until a newer token appears, the lock's life passes, or the store
   * fails. Each poll also tries the lock (a cheap SET NX): when the holder gave up (its fetch
   * failed and it released the lock), this replica takes over at once instead of waiting out
   * the lock's whole life.
   */
  private async waitForNewer(
    client: ClientConfig,
    knownExpiresAt: number,
    ttl: number,
    owner: string,
  ): Promise<StoredToken | 'lock-taken' | undefined> {
    const until = this.clock.monotonic() + ttl;
    while (this.clock.monotonic() < until) {
      await this.clock.sleep(LOCK_POLL_INTERVAL_MS);
      const shared = await this.cache.shared(client);
      if (shared && expiresLater(shared, knownExpiresAt)) return shared;
      if (!this.cache.storeAvailable) return undefined;
      const locked = await this.lock
        .acquireLock(this.cache.refOf(client), owner, ttl)
        .catch(() => false);
      if (locked) return 'lock-taken';
    }
    return undefined;
  }

  private async fetchAndSave(
    client: ClientConfig,
    environment: EnvironmentConfig,
    waitForStore: boolean,
    signal?: AbortSignal,
  ): Promise<StoredToken> {
    const secret = this.config.secretFor(client.key);
    if (secret === undefined) {
      // Only possible while a reload removes the client under a running request.
      throw new UpstreamUnavailableError('bad_status', 'the client is being reconfigured');
    }
    try {
      const token = await this.fetchWithSecret(client, secret, environment, waitForStore, signal);
      this.rejections.delete(client.key);
      return token;
    } catch (e) {
      if (!(e instanceof UpstreamRejectedError) || signal?.aborted) throw e;
      // The secret in use is refused: if ops mounted a newer one, this is the moment to use it.
      const candidate = this.candidates.candidateFor(client);
      if (candidate !== undefined && candidate !== secret) {
        try {
          const token = await this.fetchWithSecret(client, candidate, environment, waitForStore);
          this.candidates.adopt(client, candidate);
          this.rejections.delete(client.key);
          return token;
        } catch {
          // fall through: report the refusal of the secret in use
        }
      }
      this.rejections.set(client.key, { at: this.clock.monotonic(), error: e });
      throw e;
    }
  }

  /**
   * One token request with the given secret (the one in use, or a rotation candidate being
   * tried); the token is stored like any other.
   */
  async fetchWithSecret(
    client: ClientConfig,
    secret: string,
    environment = this.environmentOf(client),
    waitForStore = true,
    signal?: AbortSignal,
  ): Promise<StoredToken> {
    const issued = await this.upstream.fetchToken(
      {
        environment: client.environment,
        clientId: client.clientId,
        secret,
        scope: client.scope,
        authMethod: client.authMethod,
        // Absent for a discovery environment: the OAuth client finds it from the issuer.
        tokenUrl: environment.tokenUrl,
        timeoutMs: environment.timeoutMs,
        keyId: client.keyId,
        signingAlg: client.signingAlg,
        assertionCertificate: client.assertionCertificate,
        audience: client.audience,
        resources: client.resources,
        extraParams: client.extraParams,
        caFile: environment.caFile,
      },
      { signal },
    );
    const token: StoredToken = {
      accessToken: issued.accessToken,
      tokenType: 'Bearer',
      scope: issued.scope,
      requestedAt: issued.requestedAt,
      expiresAt: issued.expiresAt,
    };
    // The replica's copy is taken at once; off the lock, the caller does not wait for Redis.
    const saved = this.cache.save(client, token);
    if (waitForStore) await saved;
    this.logger.log({
      msg: 'token obtained',
      environment: client.environment,
      clientId: client.clientId,
      lifetimeSeconds: issued.lifetimeSeconds,
      expiresAt: new Date(wallTimeOf(this.clock, token.expiresAt)).toISOString(),
    });
    return token;
  }

  private environmentOf(client: ClientConfig): EnvironmentConfig {
    const environment = this.config.service.environments.get(client.environment);
    if (!environment)
      throw new UpstreamUnavailableError('bad_status', 'the client is being reconfigured');
    return environment;
  }
}

/**
 * Whether `token` is a newer token than the one that expires at `knownExpiresAt`: later by more
 * than EXPIRY_TIE_MS. Two readings of the same token from Redis differ by their round trips
 * (each is its remaining life counted from before the read), so a bare `>` would take a
 * re-read of the known token for a new one.
 */
function expiresLater(token: StoredToken, knownExpiresAt: number): boolean {
  return token.expiresAt > knownExpiresAt + EXPIRY_TIE_MS;
}
