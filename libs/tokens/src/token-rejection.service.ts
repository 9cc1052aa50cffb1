import { Inject, Injectable, Optional } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import type { Caller } from '@app/auth';
import { AuditLog } from '@app/audit';
import { InvalidRequestError, reasonOf } from '@app/errors';
import { MetricsService, tokenFingerprint } from '@app/observability';
import { tokenSha256, type StoredToken } from '@app/token-store';
import { ClientResolver } from './client-resolver';
import { TokenSource } from './token-source';
import { optionalQueryString, outcomeOf, writeTokenRequestAudit } from './token-request-audit';
import { toVendedToken, type VendedToken } from './vended-token';

/** The one field of a rejection report: SHA-256 of the refused token, lowercase hex. */
const TOKEN_SHA256 = /^[0-9a-f]{64}$/;

/** What came of a report (audit outcome and metric label). */
export type RejectionOutcome = 'refreshed' | 'joined' | 'not_current' | 'rate_limited';

/**
 * POST /tokens/:clientId/rejections: a downstream API refused a token we served. If it is the
 * token served now, the fleet revokes it and fetches one new token (single flight across the
 * fleet); an older token gets the current one without an IdP request. At most one forced
 * refresh per client per `refresh.minRejectionIntervalSeconds` for the whole fleet: past it,
 * the current token (counted), so a caller stuck in a 401 loop cannot hammer the IdP.
 */
@Injectable()
export class TokenRejectionService {
  constructor(
    private readonly audit: AuditLog,
    private readonly config: ConfigService,
    private readonly resolver: ClientResolver,
    private readonly source: TokenSource,
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  async report(
    caller: Caller,
    clientId: string,
    query: { environment?: unknown },
    body: unknown,
    requestId?: string,
  ): Promise<VendedToken> {
    let client: ClientConfig | undefined;
    let environment: string | undefined;
    try {
      environment = optionalQueryString(query.environment, 'environment');
      client = this.resolver.resolve(caller, clientId, environment);
      const rejected = parseReport(body);
      const { token, outcome } = await this.answer(client, rejected);
      this.metrics?.rejectionReports.inc({
        client_id: client.clientId,
        environment: client.environment,
        outcome,
      });
      const answer = toVendedToken(client, token, this.clock);
      this.writeAudit(caller, clientId, client.environment, outcome, requestId, {
        tokenFingerprint: tokenFingerprint(token.accessToken),
      });
      return answer;
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

  private async answer(
    client: ClientConfig,
    rejectedSha: string,
  ): Promise<{ token: StoredToken; outcome: RejectionOutcome }> {
    const current = this.source.copy(client) ?? (await this.source.current(client));
    if (!current) return { token: await this.source.obtain(client, 0), outcome: 'not_current' };
    if (tokenSha256(current.accessToken) !== rejectedSha) {
      return { token: current, outcome: 'not_current' };
    }
    const intervalMs = this.config.service.refresh.minRejectionIntervalSeconds * 1000;
    if (await this.source.claimForcedRefresh(client, intervalMs)) {
      await this.source.revoke(client, current);
      return { token: await this.source.obtain(client, 0), outcome: 'refreshed' };
    }
    // Another replica is replacing this very token: wait for its new one (no IdP request).
    if (await this.source.revokedByFleet(client, current)) {
      return { token: await this.source.obtain(client, 0), outcome: 'joined' };
    }
    return { token: current, outcome: 'rate_limited' };
  }

  private writeAudit(
    caller: Caller,
    clientId: string,
    environment: string | undefined,
    outcome: string,
    requestId: string | undefined,
    extra: Record<string, string | undefined>,
  ): void {
    writeTokenRequestAudit(
      this.audit,
      { msg: 'token rejection report', requestId, caller, clientId, environment, outcome },
      extra,
    );
  }
}

/** The SHA-256 the report names; 400 for anything but `{"token_sha256":"<64 lowercase hex>"}`. */
export function parseReport(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequestError('The body must be {"token_sha256":"<64 lowercase hex>"}.');
  }
  const fields = Object.keys(body);
  const sha = (body as Record<string, unknown>).token_sha256;
  if (fields.length !== 1 || typeof sha !== 'string' || !TOKEN_SHA256.test(sha)) {
    throw new InvalidRequestError('The body must be {"token_sha256":"<64 lowercase hex>"}.');
  }
  return sha;
}
