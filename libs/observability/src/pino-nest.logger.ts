import type { LoggerService } from '@nestjs/common';
import type { Logger, Level } from 'pino';

/**
 * Nest's logger interface over the root pino logger: Nest's own lines and every
 * `new Logger(context)` in the libraries come out as JSON with a `context` field.
 *
 * Why not nestjs-pino: its request-scoped logger needs a Nest middleware on every route (run
 * through @fastify/middie) and an AsyncLocalStorage, whose promise hooks then tax every promise
 * in the process. On the cache-hit path that was the largest single cost (bench/results.md).
 * Lines that belong to a request carry its `requestId` explicitly (audit lines, error answers).
 *
 * Call shapes, as Nest's Logger facade passes them: `(message, ...params, context)`; a message
 * may be an object (merged into the line) or an Error (as `err`); Nest's exception handlers
 * call `error(message, stack, context)`.
 */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly root: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    if (!this.root.isLevelEnabled(level)) return;
    const line: Record<string, unknown> = {};
    // Nest's facade appends the context as the last parameter.
    if (params.length > 0) line.context = params[params.length - 1];
    const rest = params.slice(0, -1);
    if (message instanceof Error) {
      line.err = message;
      this.root[level](line, ...(rest as []));
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(line, message);
      this.root[level](line, ...(rest as []));
    } else if (level === 'error' && typeof message === 'string' && isStack(rest[0])) {
      // Nest's exception handlers: error(message, stack, context).
      const err = new Error(message);
      err.stack = rest[0];
      line.err = err;
      this.root.error(line);
    } else {
      this.root[level](line, String(message), ...(rest as []));
    }
  }
}

function isStack(value: unknown): value is string {
  return typeof value === 'string' && /\n\s*at /.test(value);
}
