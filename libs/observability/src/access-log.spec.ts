import type { FastifyReply, FastifyRequest } from 'fastify';
import { accessLogHook } from './access-log';
import { createRootLogger } from './logger.options';

describe('accessLogHook', () => {
  const lines: Record<string, unknown>[] = [];
  const hook = accessLogHook(
    createRootLogger('info', {
      write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>),
    }),
  );
  const answer = (method: string, url: string, statusCode: number): void => {
    const request = { id: 'req-1', method, url, ip: '10.0.0.7' } as FastifyRequest;
    const reply = { statusCode, elapsedTime: 3.6 } as FastifyReply;
    let done = 0;
    hook(request, reply, () => done++);
    expect(done).toBe(1);
  };

  beforeEach(() => lines.splice(0));

  it('writes one line per answer: method, path without query, status, time, request id', () => {
    answer('POST', '/admin/clients/a.client/refresh?environment=uat', 200);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'request completed',
        requestId: 'req-1',
        req: {
          id: 'req-1',
          method: 'POST',
          url: '/admin/clients/a.client/refresh',
          remoteAddress: '10.0.0.7',
        },
        res: { statusCode: 200 },
        responseTime: 4,
      }),
    ]);
  });

  it('logs 5xx answers at error level', () => {
    answer('GET', '/admin/clients', 503);
    expect(lines.map((l) => l.level)).toEqual(['error']);
  });

  it.each([
    '/tokens/a.client',
    '/tokens/a.client?environment=uat',
    '/health/live',
    '/health/ready',
    '/metrics',
  ])('writes no access line for %s', (url) => {
    answer('GET', url, 200);
    expect(lines).toEqual([]);
  });

  it.each(['/tokensx', '/healthy', '/metricsz', '/docs', '/nope'])('logs %s', (url) => {
    answer('GET', url, 404);
    expect(lines).toHaveLength(1);
  });
});
