import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { MetricsService } from '@app/observability';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import {
  FLEET_CHANNEL,
  TOKEN_STORE,
  parseClientRef,
  replaces,
  tokenSha256,
  type FleetChannel,
  type StoredToken,
  type TokenRef,
  type TokenStore,
} from '@app/token-store';
import { SingleFlight } from './single-flight';
import { tokenRequestShape } from './token-request-shape';

/**
 * A copy re-checked against the durable revocation marker is trusted this long even while the
 * fleet channel is not confirmed: bounds the extra Redis reads then, well within the 1 s in
 * which a revocation must reach every replica.
 */
export const RECHECK_TRUST_MS = 250;
/**
 * A request waits this long at most for the marker check; past it (Redis is slow) the copy is
 * served, as in an outage, and the check goes on in the background and drops the copy if it
 * was revoked.
 */
export const CHECK_WAIT_MS = 250;
/** While the store is known down, a copy is re-checked at most this often (in the background). */
export const OUTAGE_PROBE_INTERVAL_MS = 200;

/** This replica's copy of a token, with what it was checked against. */
interface Copy {
  /** Replaced by a later reading of the same token (a closer lower bound of its expiry). */
  token: StoredToken;
  readonly sha: string;
  readonly shape: string;
  /** Monotonic ms since which this copy is known not revoked. */
  checkedAt: number;
}

/**
 * Two layers: this replica's own copy of each token (no round trip, and what keeps callers
 * served while Redis is down) in front of the shared store. A copy is served without a round
 * trip only while the fleet channel has been confirmed alive since the copy was last checked:
 * otherwise a revocation may have been missed, and the copy is checked against the durable
 * marker first (README "Fleet-wide invalidation"). Store failures never propagate: they read
 * as a miss and are logged once per outage, not once per request.
 */
@Injectable()
export class TokenCache {
  private readonly logger = new Logger(TokenCache.name);
  private readonly own = new Map<string, Copy>();
  /** Revoked digests this replica has heard of, per client key, until the token's expiry. */
  private readonly revoked = new Map<string, Map<string, number>>();
  private readonly shapes = new WeakMap<ClientConfig, string>();
  private readonly checks = new SingleFlight<StoredToken | undefined>();
  private storeDown = false;
  private lastProbeAt = Number.NEGATIVE_INFINITY;
  private readonly listeners: ((client: ClientConfig, token: StoredToken) => void)[] = [];

  constructor(
    @Inject(TOKEN_STORE) private readonly store: TokenStore,
    @Inject(FLEET_CHANNEL) private readonly fleet: FleetChannel,
    private readonly config: ConfigService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    metrics?.observeHeldTokens(() => this.heldSamples());
  }

  private *heldSamples(): Iterable<{ clientId: string; environment: string; expiresAt: number }> {
    for (const [key, copy] of this.own) {
      const ref = parseClientRef(key);
      if (ref) yield { ...ref, expiresAt: copy.token.expiresAt };
    }
  }

  /** Whether the last store operation succeeded. */
  get storeAvailable(): boolean {
    return !this.storeDown;
  }

  /** Called whenever this replica adopts a token that expires later than the one it held. */
  onAdopt(listener: (client: ClientConfig, token: StoredToken) => void): void {
    this.listeners.push(listener);
  }

  /** The fingerprint of the client's token request under the running configuration. */
  shapeOf(client: ClientConfig): string {
    let shape = this.shapes.get(client);
    if (shape === undefined) {
      const environment = this.config.service.environments.get(client.environment);
      shape = environment ? tokenRequestShape(client, environment) : '';
      this.shapes.set(client, shape);
    }
    return shape;
  }

  /** Where the store keeps the client's token: its slot and the shape it must have. */
  refOf(client: ClientConfig): TokenRef {
    return {
      environment: client.environment,
      clientId: client.clientId,
      shape: this.shapeOf(client),
    };
  }

  /** This replica's copy when it can be served without a round trip (the hot path). */
  local(client: ClientConfig): StoredToken | undefined {
    const copy = this.own.get(client.key);
    if (!copy || copy.shape !== this.shapeOf(client)) return undefined;
    return this.trusted(copy) ? copy.token : undefined;
  }

  /** This replica's copy, trusted or not (state views, the expiry a refresh must beat). */
  held(client: ClientConfig): StoredToken | undefined {
    const copy = this.own.get(client.key);
    return copy && copy.shape === this.shapeOf(client) ? copy.token : undefined;
  }

  /**
   * This replica's copy, checked against the revocation marker first when it is not trusted.
   * While the store is down the copy is served (the outage rule), and checked in the background.
   */
  async verified(client: ClientConfig): Promise<StoredToken | undefined> {
    const copy = this.own.get(client.key);
    if (!copy || copy.shape !== this.shapeOf(client)) return undefined;
    if (this.trusted(copy)) return copy.token;
    if (this.storeDown) {
      const now = this.fleet.monotonicNow();
      if (now - this.lastProbeAt >= OUTAGE_PROBE_INTERVAL_MS) {
        this.lastProbeAt = now;
        void this.check(client, copy);
      }
      return copy.token;
    }
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), CHECK_WAIT_MS);
      timer.unref();
    });
    const checked = await Promise.race([this.check(client, copy), slow]);
    clearTimeout(timer);
    if (checked !== 'slow') return checked;
    return this.own.get(client.key) === copy ? copy.token : undefined;
  }

  /** The shared store's token; adopted as this replica's copy when it expires later. */
  async shared(client: ClientConfig): Promise<StoredToken | undefined> {
    const startedAt = this.fleet.monotonicNow();
    try {
      const token = await this.store.get(this.refOf(client));
      this.storeRecovered();
      // What the store holds is not revoked (revocation removes it atomically).
      if (token) this.keepLocal(client, token, startedAt);
      return token && !this.isRevokedLocally(client.key, tokenSha256(token.accessToken))
        ? token
        : undefined;
    } catch (e) {
      this.storeFailed('read', e);
      return undefined;
    }
  }

  /** Keeps the token locally and offers it to the shared store (which keeps the later one). */
  async save(client: ClientConfig, token: StoredToken): Promise<void> {
    this.keepLocal(client, token, this.fleet.monotonicNow());
    try {
      await this.store.put(this.refOf(client), token);
      this.storeRecovered();
    } catch (e) {
      this.storeFailed('write', e);
    }
  }

  /**
   * Forgets a revoked token in this replica (and never adopts it again). Returns whether this
   * replica held it as its copy.
   */
  revokeLocally(clientKey: string, sha: string, expiresAt: number): boolean {
    const marks = this.revoked.get(clientKey) ?? new Map<string, number>();
    marks.set(sha, expiresAt);
    this.revoked.set(clientKey, marks);
    const copy = this.own.get(clientKey);
    if (copy?.sha !== sha) return false;
    this.own.delete(clientKey);
    return true;
  }

  /** Drops this replica's copy (the client was removed). */
  forget(client: ClientConfig): void {
    this.own.delete(client.key);
    this.revoked.delete(client.key);
  }

  /** Drops the token everywhere (the client's scope or IdP changed: the token no longer fits). */
  async discard(client: ClientConfig): Promise<void> {
    this.own.delete(client.key);
    try {
      await this.store.delete(this.refOf(client));
    } catch (e) {
      this.storeFailed('write', e);
    }
  }

  private trusted(copy: Copy): boolean {
    return (
      this.fleet.confirmedSince(copy.checkedAt) ||
      this.fleet.monotonicNow() - copy.checkedAt <= RECHECK_TRUST_MS
    );
  }

  /** One marker read per client at a time, however many requests wait on it. */
  private check(client: ClientConfig, copy: Copy): Promise<StoredToken | undefined> {
    return this.checks.run(client.key, async () => {
      const startedAt = this.fleet.monotonicNow();
      try {
        const revoked = await this.store.isRevoked(client, copy.sha);
        this.storeRecovered();
        if (revoked) {
          this.revokeLocally(client.key, copy.sha, copy.token.expiresAt);
          return undefined;
        }
        if (this.own.get(client.key) === copy) copy.checkedAt = startedAt;
        return copy.token;
      } catch (e) {
        this.storeFailed('read', e);
        return this.own.get(client.key) === copy ? copy.token : undefined;
      }
    });
  }

  private isRevokedLocally(clientKey: string, sha: string): boolean {
    const marks = this.revoked.get(clientKey);
    if (!marks) return false;
    const until = marks.get(sha);
    if (until === undefined) return false;
    if (until > this.clock.monotonic()) return true;
    marks.delete(sha);
    return false;
  }

  private keepLocal(client: ClientConfig, token: StoredToken, checkedAt: number): void {
    const sha = tokenSha256(token.accessToken);
    if (this.isRevokedLocally(client.key, sha)) return;
    const shape = this.shapeOf(client);
    const current = this.own.get(client.key);
    const held = current?.shape === shape ? current : undefined;
    if (held?.sha === sha) {
      held.checkedAt = Math.max(held.checkedAt, checkedAt);
      // Each read of the same token gives a lower bound of its expiry (its remaining life from
      // Redis, counted from before the read): the latest bound is the closest, and still safe.
      if (token.expiresAt > held.token.expiresAt) held.token = token;
      return;
    }
    if (held && !replaces(token, held.token)) return;
    this.own.set(client.key, { token, sha, shape, checkedAt });
    for (const listener of this.listeners) listener(client, token);
  }

  private storeFailed(operation: 'read' | 'write', e: unknown): void {
    this.metrics?.storeErrors.inc({ operation });
    if (this.storeDown) return;
    this.storeDown = true;
    this.lastProbeAt = this.fleet.monotonicNow();
    this.logger.warn(
      { operation, err: { message: (e as Error).message } },
      'token store unavailable; serving from this replica',
    );
  }

  private storeRecovered(): void {
    if (!this.storeDown) return;
    this.storeDown = false;
    this.logger.log('token store available again');
  }
}
