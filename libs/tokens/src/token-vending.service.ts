import { Inject, Injectable, Optional } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import type { Caller } from '@app/auth';
import { InvalidRequestError, reasonOf, UpstreamUnavailableError } from '@app/errors';
import { AuditLog, DisclosureLog } from '@app/audit';
import { MetricsService, tokenFingerprint } from '@app/observability';
import { laterToken, type StoredToken } from '@app/token-store';
import { ClientResolver } from './client-resolver';
import { TokenSource } from './token-source';
import { optionalQueryString, outcomeOf, writeTokenRequestAudit } from './token-request-audit';
import { toVendedToken, type VendedToken } from './vended-token';

/** Upper bound of `minTtl`: a day, the longest lifetime the upstream client accepts. */
export const MAX_MIN_TTL_SECONDS = 86_400;
/**
 * A token younger than this is never replaced just because a caller asked for more life than
 * it has: otherwise one caller with a large `minTtl` could make every request hit the IdP.
 */
export const MIN_REFETCH_INTERVAL_MS = 5_000;

export interface TokenQuery {
  environment?: unknown;
  minTtl?: unknown;
}

/**
 * GET /tokens/:clientId: resolve the client, then serve the first token that has at least
 * `minTtl` left from this replica's copy, the shared store, or (once per client at a time)
 * the IdP. Audits each disclosure (DisclosureLog) and each failure.
 */
@Injectable()
export class TokenVendingService {
  /** Fingerprints by token object: a cache hit serves the same object, hashed only once. */
  private readonly fingerprints = new WeakMap<StoredToken, string>();

  constructor(
    private readonly disclosures: DisclosureLog,
    private readonly audit: AuditLog,
    private readonly config: ConfigService,
    private readonly resolver: ClientResolver,
    private readonly source: TokenSource,
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  async vend(
    caller: Caller,
    clientId: string,
    query: TokenQuery,
    requestId?: string,
    source?: string,
  ): Promise<VendedToken> {
    let client: ClientConfig | undefined;
    let environment: string | undefined;
    try {
      environment = optionalQueryString(query.environment, 'environment');
      const minTtl = this.parseMinTtl(query.minTtl);
      client = this.resolver.resolve(caller, clientId, environment);
      // The common case, this replica's copy, is answered without another async step.
      const local = this.source.copy(client);
      const token = this.isUsable(local, minTtl.seconds * 1000)
        ? local
        : await this.tokenFor(client, minTtl);
      const body = toVendedToken(client, token, this.clock);
      this.metrics?.countServed(clientId, client.environment);
      // A caller's first receipt of this token is audited now; its repeats are summed.
      this.disclosures.served({
        requestId,
        caller: caller.name,
        clientId,
        environment: client.environment,
        tokenFingerprint: this.fingerprintOf(token),
        expiresAt: token.expiresAt,
        expiresIn: body.expires_in,
        source,
        presented: caller.presented,
      });
      return body;
    } catch (e) {
      this.writeAudit(
        caller,
        clientId,
        client?.environment ?? environment,
        outcomeOf(e),
        requestId,
        { reason: reasonOf(e) },
      );
      throw e;
    }
  }

  /** Strictly unexpired as well: with minTtl 0 a token is not served at its expiry instant. */
  private isUsable(token: StoredToken | undefined, minTtlMs: number): token is StoredToken {
    if (token === undefined) return false;
    const now = this.clock.monotonic();
    return token.expiresAt > now && token.expiresAt - now >= minTtlMs;
  }

  /** isUsable without narrowing (a token found unusable once may be replaced meanwhile). */
  private lastsLongEnough(token: StoredToken, minTtlMs: number): boolean {
    return this.isUsable(token, minTtlMs);
  }

  /** No usable copy in this replica: the shared store's, else (once at a time) the IdP's. */
  private async tokenFor(
    client: ClientConfig,
    minTtl: { seconds: number; explicit: boolean },
  ): Promise<StoredToken> {
    const minTtlMs = minTtl.seconds * 1000;
    const usable = (t: StoredToken | undefined): t is StoredToken => this.isUsable(t, minTtlMs);

    // This replica's copy, re-checked against revocations if the fleet channel had a gap.
    const local = await this.source.verified(client);
    if (usable(local)) return local;
    const shared = await this.source.shared(client);
    if (usable(shared)) return shared;

    // A concurrent request may have obtained a token meanwhile.
    const held = laterToken(this.source.held(client), shared);
    if (held && this.lastsLongEnough(held, minTtlMs)) return held;
    // A token this young is not replaced just because it is shorter than asked: the IdP
    // would only issue another one as short, once per request.
    if (
      held &&
      held.expiresAt > this.clock.monotonic() &&
      this.clock.monotonic() - held.requestedAt < MIN_REFETCH_INTERVAL_MS
    ) {
      throw this.tooShort(held, minTtl);
    }
    const fresh = await this.source.obtain(client, held?.expiresAt ?? 0);
    if (usable(fresh)) return fresh;
    throw this.tooShort(fresh, minTtl);
  }

  private fingerprintOf(token: StoredToken): string {
    let fingerprint = this.fingerprints.get(token);
    if (fingerprint === undefined) {
      fingerprint = tokenFingerprint(token.accessToken);
      this.fingerprints.set(token, fingerprint);
    }
    return fingerprint;
  }

  /** 400 when the caller asked for more than the client's tokens live; 503 when our own minimum is. */
  private tooShort(token: StoredToken, minTtl: { seconds: number; explicit: boolean }): Error {
    if (minTtl.explicit) return minTtlTooLong(token, minTtl.seconds);
    return new UpstreamUnavailableError(
      'too_short',
      'the identity provider issued a token shorter than the minimum time to live',
    );
  }

  private parseMinTtl(raw: unknown): { seconds: number; explicit: boolean } {
    const text = optionalQueryString(raw, 'minTtl');
    if (text === undefined)
      return { seconds: this.config.service.refresh.minTtlSeconds, explicit: false };
    if (!/^\d{1,6}$/.test(text) || Number(text) > MAX_MIN_TTL_SECONDS) {
      throw new InvalidRequestError(
        `minTtl must be a whole number of seconds from 0 to ${MAX_MIN_TTL_SECONDS}.`,
      );
    }
    return { seconds: Number(text), explicit: true };
  }

  private writeAudit(
    caller: Caller,
    clientId: string,
    environment: string | undefined,
    outcome: string,
    requestId: string | undefined,
    extra: Record<string, string | number | undefined>,
  ): void {
    // Metric labels only for configured clients: arbitrary request text must not mint series.
    // A served request's client is configured; only failures need the lookup.
    const known =
      outcome === 'served' ||
      (environment !== undefined &&
        this.config.clientsWithId(clientId).some((c) => c.environment === environment));
    this.metrics?.tokenRequests.inc({
      client_id: known ? clientId : '(unknown)',
      environment: known ? environment : '(unknown)',
      outcome,
    });
    writeTokenRequestAudit(
      this.audit,
      { msg: 'token request', requestId, caller, clientId, environment, outcome },
      extra,
    );
  }
}

function minTtlTooLong(token: StoredToken, minTtlSeconds: number): InvalidRequestError {
  const lifetime = Math.floor((token.expiresAt - token.requestedAt) / 1000);
  return new InvalidRequestError(
    `minTtl (${minTtlSeconds} s) is longer than this client's tokens live (${lifetime} s).`,
  );
}
