import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

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

/**
 * The one thing audit lines could ever carry by mistake is a secret under its own name at the
 * top level: audit lines are built field by field from non-secret values (caller name, client
 * id, outcome, fingerprint). Top-level paths cost a fraction of the wildcard paths above, and
 * an audit line is written on every token request (see bench/results.md).
 */
export const AUDIT_REDACTED_PATHS = [
  'authorization',
  'secret',
  'clientSecret',
  'client_secret',
  'access_token',
  'accessToken',
  'token',
  'password',
];

const CENSOR = '[redacted]';

/** The root logger's settings: JSON lines, redaction at the logger level. */
export function rootLoggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: CENSOR },
    base: { service: 'token-vendor' },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

/**
 * The root logger every line goes through; `stream` is handed in by tests (else stdout).
 *
 * stdout is written synchronously, one write per line: an audit line is on its way before the
 * answer it records, and nothing is lost when the process exits or crashes. pino's default
 * asynchronous buffer also cost ~5.5 KB of garbage per line on the token path (it re-measures
 * its pending string on every write; bench/alloc.js: 31.4 → 25.9 KB per request). The price:
 * a stdout reader that stops reading would stall the process (Kubernetes drains it).
 */
export function createRootLogger(level: string, stream?: DestinationStream): Logger {
  return pino(rootLoggerOptions(level), stream ?? pino.destination({ dest: 1, sync: true }));
}

/** The audit log's logger: a child of the root, with its own (top-level) redaction. */
export function createAuditLogger(root: Logger): Logger {
  return root.child(
    { context: 'Audit' },
    { redact: { paths: AUDIT_REDACTED_PATHS, censor: CENSOR } },
  );
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
