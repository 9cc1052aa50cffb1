import { Registry } from 'prom-client';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { MetricsService } from './metrics.service';
import {
  isTokenRequestRoute,
  requestMetricsHook,
  tokenRequestDurationHook,
  tokenRequestOutcome,
  TOKENS_ROUTE,
} from './request-metrics';

describe('tokenRequestOutcome', () => {
  it.each([
    [200, 'served'],
    [400, 'invalid_request'],
    [401, 'unauthorized'],
    [404, 'unknown_client'],
    [429, 'too_many_requests'],
    [502, 'upstream_rejected'],
    [503, 'upstream_unavailable'],
    [500, 'error'],
    [413, 'error'],
  ])('%i → %s', (status, outcome) => {
    expect(tokenRequestOutcome(status)).toBe(outcome);
  });
});

describe('request metrics hooks', () => {
  const clock = { now: () => 0, monotonic: () => 0, sleep: () => Promise.resolve() };
  const answer = (
    sut: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void,
    request: { method: string; url?: string; authorization?: string },
    status: number,
  ): void => {
    const done = jest.fn();
    sut(
      {
        method: request.method,
        routeOptions: { url: request.url },
        headers: request.authorization ? { authorization: request.authorization } : {},
      } as unknown as FastifyRequest,
      { statusCode: status, elapsedTime: 12 } as unknown as FastifyReply,
      done,
    );
    expect(done).toHaveBeenCalledTimes(1);
  };
  const values = async (registry: Registry, name: string) =>
    (await registry.getSingleMetric(name)!.get()).values.map((v) => {
      const { metricName } = v as { metricName?: string };
      return { ...v.labels, ...(metricName ? { metric: metricName } : {}), value: v.value };
    });

  it('attaches the duration hook to GET /tokens/:clientId only', () => {
    expect(isTokenRequestRoute({ method: 'GET', url: TOKENS_ROUTE })).toBe(true);
    expect(isTokenRequestRoute({ method: 'HEAD', url: TOKENS_ROUTE })).toBe(false);
    expect(isTokenRequestRoute({ method: 'POST', url: `${TOKENS_ROUTE}/rejections` })).toBe(false);
    expect(isTokenRequestRoute({ method: 'GET', url: '/admin/clients' })).toBe(false);
    expect(isTokenRequestRoute({ method: ['GET', 'POST'], url: TOKENS_ROUTE })).toBe(false);
  });

  it('times the token route by outcome, in seconds; the global hook times nothing', async () => {
    const metrics = new MetricsService(clock);
    const timed = tokenRequestDurationHook(metrics);
    answer(timed, { method: 'GET', url: TOKENS_ROUTE, authorization: 'Bearer k' }, 200);
    answer(timed, { method: 'GET', url: TOKENS_ROUTE, authorization: 'Bearer k' }, 503);
    const global = requestMetricsHook(metrics);
    answer(global, { method: 'GET', url: TOKENS_ROUTE, authorization: 'Bearer k' }, 200);
    answer(global, { method: 'GET', url: '/admin/clients', authorization: 'Bearer k' }, 200);
    const found = (
      await values(metrics.registry, 'token_vendor_token_request_duration_seconds')
    ).filter((v) => v.metric !== 'token_vendor_token_request_duration_seconds_bucket');
    expect(found).toEqual(
      expect.arrayContaining([
        {
          outcome: 'served',
          metric: 'token_vendor_token_request_duration_seconds_count',
          value: 1,
        },
        {
          outcome: 'served',
          metric: 'token_vendor_token_request_duration_seconds_sum',
          value: 0.012,
        },
        {
          outcome: 'upstream_unavailable',
          metric: 'token_vendor_token_request_duration_seconds_count',
          value: 1,
        },
      ]),
    );
    expect(found).toHaveLength(4);
  });

  it('counts every 401 and 429, on any route, by reason', async () => {
    const metrics = new MetricsService(clock);
    const sut = requestMetricsHook(metrics);
    answer(sut, { method: 'GET', url: TOKENS_ROUTE }, 401);
    answer(sut, { method: 'POST', url: '/admin/reload', authorization: 'Bearer x' }, 401);
    answer(sut, { method: 'GET', url: '/admin/clients', authorization: 'Bearer x' }, 401);
    answer(sut, { method: 'GET', url: TOKENS_ROUTE, authorization: 'Bearer x' }, 429);
    answer(sut, { method: 'GET', url: TOKENS_ROUTE, authorization: 'Bearer x' }, 403);
    expect(await values(metrics.registry, 'token_vendor_auth_failures_total')).toEqual(
      expect.arrayContaining([
        { reason: 'missing_credentials', value: 1 },
        { reason: 'invalid_credentials', value: 2 },
        { reason: 'rate_limited', value: 1 },
      ]),
    );
    expect(await values(metrics.registry, 'token_vendor_auth_failures_total')).toHaveLength(3);
  });
});
