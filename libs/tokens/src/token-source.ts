import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import {
  FLEET_CHANNEL,
  TOKEN_STORE,
  laterToken,
  tokenSha256,
  type FleetAck,
  type FleetChannel,
  type StoredToken,
  type TokenStore,
} from '@app/token-store';
import { tokenFingerprint } from '@app/observability';
import { TokenCache } from './token-cache';
import { TokenFetcher, type ObtainOptions } from './token-fetcher';

/** What a fleet-wide revocation reached. */
export interface Revocation {
  /** Whether the durable marker was written (false: the store was down; this replica only). */
  durable: boolean;
  /** Short fingerprint of the revoked token (never the token). */
  revokedFingerprint: string;
  /** The other replicas' answers (`dropped` or `not-held`). */
  replicas: FleetAck[];
}

/**
 * The one seam every path asks for a token (vending, the scheduler, admin, rotation): this
 * replica's copy → the shared store → a fetch under the fleet's refresh lock. It also revokes a
 * token for the whole fleet: a durable marker in the store (which a replica that missed the
 * message checks before serving its copy again) and a message on the fleet channel.
 */
@Injectable()
export class TokenSource implements OnModuleInit {
  private readonly logger = new Logger(TokenSource.name);
  private readonly localForcedUntil = new Map<string, number>();

  constructor(
    private readonly cache: TokenCache,
    private readonly fetcher: TokenFetcher,
    @Inject(TOKEN_STORE) private readonly store: TokenStore,
    @Inject(FLEET_CHANNEL) private readonly fleet: FleetChannel,
    private readonly config: ConfigService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    this.fleet.onRequest('revoked', (message) => {
      // A sender of the previous version sends no remaining life: keep the mark for a day, the
      // longest any token is believed to live.
      const left = Number.isFinite(message.expiresInMs) ? message.expiresInMs : 86_400_000;
      const until = this.fleet.monotonicNow() + left;
      const held = this.cache.revokeLocally(message.client, message.sha, until);
      return Promise.resolve({ outcome: held ? 'dropped' : 'not-held' });
    });
  }

  /** This replica's copy when it can be served at once (the hot path: no round trip). */
  copy(client: ClientConfig): StoredToken | undefined {
    return this.cache.local(client);
  }

  /** This replica's copy, checked against the revocation marker first when not trusted now. */
  verified(client: ClientConfig): Promise<StoredToken | undefined> {
    return this.cache.verified(client);
  }

  /** This replica's copy (checked against revocations when needed), else the shared store's. */
  async current(client: ClientConfig): Promise<StoredToken | undefined> {
    const own = await this.cache.verified(client);
    const shared = await this.cache.shared(client);
    return laterToken(own, shared);
  }

  /** The store's token only (adopted here when later): the refresh path's look before it fetches. */
  shared(client: ClientConfig): Promise<StoredToken | undefined> {
    return this.cache.shared(client);
  }

  /** This replica's copy whether or not it is trusted now (state views, refresh timing). */
  held(client: ClientConfig): StoredToken | undefined {
    return this.cache.held(client);
  }

  /** A token that expires after `knownExpiresAt`: one fetch for the whole fleet. */
  obtain(
    client: ClientConfig,
    knownExpiresAt = 0,
    options: ObtainOptions = {},
  ): Promise<StoredToken> {
    return this.fetcher.obtain(client, knownExpiresAt, options);
  }

  /** Calls `listener` with every token this replica takes as its copy (fetched or adopted). */
  onAdopt(listener: (client: ClientConfig, token: StoredToken) => void): void {
    this.cache.onAdopt(listener);
  }

  /**
   * One token request with a secret not yet in use (a rotation candidate being tried); the
   * token is stored like any other.
   */
  tryWithSecret(client: ClientConfig, secret: string): Promise<StoredToken> {
    return this.fetcher.fetchWithSecret(client, secret);
  }

  /** Forget a held refusal of the IdP (after a secret or configuration change). */
  clearRejection(clientKey: string): void {
    this.fetcher.clearRejection(clientKey);
  }

  /** The client was removed: this replica's copy and any held refusal go. */
  forget(client: ClientConfig): void {
    this.cache.forget(client);
    this.fetcher.clearRejection(client.key);
  }

  /** The client's scope or IdP changed: its token no longer fits and goes everywhere. */
  discard(client: ClientConfig): Promise<void> {
    const discarded = this.cache.discard(client);
    this.fetcher.clearRejection(client.key);
    return discarded;
  }

  isFetching(client: ClientConfig): boolean {
    return this.fetcher.isFetching(client);
  }

  /** The fingerprint of the client's token request (which stored tokens it may use). */
  shapeOf(client: ClientConfig): string {
    return this.cache.shapeOf(client);
  }

  /** Revokes `token` on every replica: none serves it again once this resolves (or within 1 s). */
  async revoke(client: ClientConfig, token: StoredToken): Promise<Revocation> {
    const sha = tokenSha256(token.accessToken);
    this.cache.revokeLocally(client.key, sha, token.expiresAt);
    let durable = true;
    try {
      await this.store.revoke(client, sha, token.expiresAt);
    } catch (e) {
      durable = false;
      this.logger.warn({
        msg: 'token revoked on this replica only: the store is unavailable',
        environment: client.environment,
        clientId: client.clientId,
        err: { message: (e as Error).message },
      });
    }
    const replicas = await this.fleet
      .request({
        type: 'revoked',
        client: client.key,
        sha,
        expiresInMs: Math.max(0, Math.ceil(token.expiresAt - this.fleet.monotonicNow())),
      })
      .catch(() => [] as FleetAck[]);
    this.logger.log({
      msg: 'token revoked for the fleet',
      environment: client.environment,
      clientId: client.clientId,
      durable,
      replicasAnswered: replicas.length,
    });
    return { durable, replicas, revokedFingerprint: tokenFingerprint(token.accessToken) };
  }

  /**
   * Whether the fleet already revoked this token (another replica is replacing it); if so this
   * replica drops its copy at once instead of waiting for the message.
   */
  async revokedByFleet(client: ClientConfig, token: StoredToken): Promise<boolean> {
    const sha = tokenSha256(token.accessToken);
    const revoked = await this.store.isRevoked(client, sha).catch(() => false);
    if (revoked) this.cache.revokeLocally(client.key, sha, token.expiresAt);
    return revoked;
  }

  /**
   * Claims the client's one forced refresh per `intervalMs` for the whole fleet; while the store
   * is down, per replica (the limit still holds for each).
   */
  async claimForcedRefresh(client: ClientConfig, intervalMs: number): Promise<boolean> {
    try {
      return await this.store.claimForcedRefresh(client, intervalMs);
    } catch {
      const now = this.fleet.monotonicNow();
      const until = this.localForcedUntil.get(client.key);
      if (until !== undefined && until > now) return false;
      this.localForcedUntil.set(client.key, now + intervalMs);
      return true;
    }
  }

  /**
   * Replaces the client's token everywhere: one new token for the fleet first, then the old one
   * revoked on every replica. If no new token can be had (the IdP fails), nothing is revoked:
   * callers keep the valid token they have.
   */
  async replace(
    client: ClientConfig,
  ): Promise<{ token: StoredToken; revocation: Revocation | undefined }> {
    const current = await this.current(client);
    const token = await this.obtain(client, current?.expiresAt ?? 0);
    if (!current || current.accessToken === token.accessToken) {
      return { token, revocation: undefined };
    }
    // A new token too short to be served (below refresh.minTtlSeconds) replaces nothing: the
    // old one stays, and the answer says nothing was revoked.
    const minTtlMs = this.config.service.refresh.minTtlSeconds * 1000;
    if (token.expiresAt - this.clock.monotonic() < minTtlMs)
      return { token, revocation: undefined };
    const revocation = await this.revoke(client, current);
    // The new token replaces the old even when it expires earlier (the fence kept the old one).
    await this.cache.save(client, token);
    return { token, revocation };
  }
}
