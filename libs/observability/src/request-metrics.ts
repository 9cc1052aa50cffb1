import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthFailureReason, MetricsService, TokenRequestOutcome } from './metrics.service';

/** The route of `GET /tokens/:clientId` as Fastify names it. */
export const TOKENS_ROUTE = '/tokens/:clientId';

const OUTCOME_BY_STATUS: Readonly<Record<number, TokenRequestOutcome>> = {
  200: 'served',
  400: 'invalid_request',
  401: 'unauthorized',
  404: 'unknown_client',
  429: 'too_many_requests',
  502: 'upstream_rejected',
  503: 'upstream_unavailable',
};

/** The outcome word of a `GET /tokens` answer, from its status (README "API", the error table). */
export function tokenRequestOutcome(status: number): TokenRequestOutcome {
  return OUTCOME_BY_STATUS[status] ?? 'error';
}

/**
 * A Fastify `onResponse` hook: `token_vendor_token_request_duration_seconds{outcome}` for
 * `GET /tokens`, and `token_vendor_auth_failures_total{reason}` for every 401 and 429 (on any
 * route). Labels are fixed words: no client id, so request text cannot create series.
 */
export function requestMetricsHook(
  metrics: MetricsService,
): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  return (request, reply, done) => {
    const status = reply.statusCode;
    if (request.method === 'GET' && request.routeOptions.url === TOKENS_ROUTE)
      metrics.observeTokenRequest(tokenRequestOutcome(status), reply.elapsedTime / 1000);
    if (status === 401 || status === 429)
      metrics.authFailures.inc({ reason: authFailureReason(request, status) });
    done();
  };
}

function authFailureReason(request: FastifyRequest, status: number): AuthFailureReason {
  if (status === 429) return 'rate_limited';
  return request.headers.authorization === undefined
    ? 'missing_credentials'
    : 'invalid_credentials';
}
