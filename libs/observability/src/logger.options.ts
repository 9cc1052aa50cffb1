import type { Params } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';

/**
 * Paths redacted by the logger itself, so no call site has to remember: the Authorization
 * header (caller keys), any secret or token field, and cookies. Call sites additionally
 * never pass secrets to a log call.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  '*.authorization',
  '*.secret',
  '*.clientSecret',
  '*.client_secret',
  '*.access_token',
  '*.accessToken',
  '*.token',
  '*.password',
  'secret',
  'access_token',
  'accessToken',
  'token',
];

/** nestjs-pino settings: JSON lines, request ids, redaction at the logger level. */
export function loggerOptions(level: string, stream?: Writable): Params {
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // The id Fastify gave the request (requestIdOf), so logs and error answers agree.
    genReqId: (req: IncomingMessage) => (req as { id?: string }).id ?? requestIdOf(req),
    // Lines written while serving a request carry its id only, not the whole request.
    quietReqLogger: true,
    // Health and metrics are scraped constantly: their access lines are noise. Token requests
    // have their audit line (caller, client, outcome, request id): an access line would only
    // repeat it, at a measurable cost on the hot path.
    // Under Fastify's middleware layer `url` loses its mount prefix; `originalUrl` keeps it.
    autoLogging: {
      ignore: (req: IncomingMessage) =>
        /^\/(health|metrics|tokens\/)/.test(
          (req as { originalUrl?: string }).originalUrl ?? req.url ?? '',
        ),
    },
    serializers: {
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        // The query string never carries secrets here (keys in the query are refused), but
        // log only the path: it is all an operator needs.
        url: req.url.split('?')[0],
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    base: { service: 'token-vendor' },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  // A stream is handed in by tests, which read every line the service writes.
  return { pinoHttp: stream ? [options, stream] : options };
}

/**
 * A request's id: the caller's `X-Request-Id` when it is a short plain token, else a random
 * UUID. Kept on the raw request, so every layer (Fastify, the logger, the audit line) uses one.
 */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
  (req as { id?: string }).id = id;
  return id;
}
