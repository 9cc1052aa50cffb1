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

type ResponseHook = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void;

/**
 * A Fastify `onResponse` hook for every request: `token_vendor_auth_failures_total{reason}` for
 * every 401 and 429 (on any route). Labels are fixed words: no client id, so request text
 * cannot create series.
 */
export function requestMetricsHook(metrics: MetricsService): ResponseHook {
  return (request, reply, done) => {
    const status = reply.statusCode;
    if (status === 401 || status === 429)
      metrics.authFailures.inc({ reason: authFailureReason(request, status) });
    done();
  };
}

/**
 * A route-level `onResponse` hook for `GET /tokens/:clientId` only (attached when the route is
 * registered, see `isTokenRequestRoute`):
 * `token_vendor_token_request_duration_seconds{outcome}`. Attached to the one route rather than
 * asking every request for its route: Fastify builds a new `routeOptions` object on each read.
 */
export function tokenRequestDurationHook(metrics: MetricsService): ResponseHook {
  return (_request, reply, done) => {
    metrics.observeTokenRequest(tokenRequestOutcome(reply.statusCode), reply.elapsedTime / 1000);
    done();
  };
}

/** Whether a route being registered is `GET /tokens/:clientId` (not its automatic HEAD). */
export function isTokenRequestRoute(route: { method: string | string[]; url: string }): boolean {
  return route.method === 'GET' && route.url === TOKENS_ROUTE;
}

function authFailureReason(request: FastifyRequest, status: number): AuthFailureReason {
  if (status === 429) return 'rate_limited';
  return request.headers.authorization === undefined
    ? 'missing_credentials'
    : 'invalid_credentials';
}
