import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';

/**
 * Paths without an access line: health and metrics are scraped constantly (noise), and token
 * requests have their audit line (caller, client, outcome, request id), which an access line
 * would only repeat at a measurable cost on the hot path.
 */
const NOT_ACCESS_LOGGED = /^\/(health|metrics|tokens)(\/|\?|$)/;

/**
 * A Fastify `onResponse` hook writing one access line per answered request: method, path
 * without the query string (keys in the query are refused, but an operator needs only the
 * path), status, time taken, request id. 5xx answers are logged at error level.
 */
export function accessLogHook(
  root: Logger,
): (request: FastifyRequest, reply: FastifyReply, done: () => void) => void {
  return (request, reply, done) => {
    if (!NOT_ACCESS_LOGGED.test(request.url)) {
      const level = reply.statusCode >= 500 ? 'error' : 'info';
      root[level](
        {
          requestId: request.id,
          req: {
            id: request.id,
            method: request.method,
            url: request.url.split('?')[0],
            remoteAddress: request.ip,
          },
          res: { statusCode: reply.statusCode },
          responseTime: Math.round(reply.elapsedTime),
        },
        'request completed',
      );
    }
    done();
  };
}
