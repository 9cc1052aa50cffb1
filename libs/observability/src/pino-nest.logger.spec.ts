import { createRootLogger } from './logger.options';
import { PinoNestLogger } from './pino-nest.logger';

/** A root logger at `level` writing parsed lines into `lines`, without time and service. */
function capture(level = 'info'): { lines: Record<string, unknown>[]; logger: PinoNestLogger } {
  const lines: Record<string, unknown>[] = [];
  const root = createRootLogger(level, {
    write: (text: string) => {
      const { time, service, ...line } = JSON.parse(text) as Record<string, unknown>;
      expect([typeof time, service]).toEqual(['string', 'token-vendor']);
      lines.push(line);
    },
  });
  return { lines, logger: new PinoNestLogger(root) };
}

describe('PinoNestLogger (Nest LoggerService over pino)', () => {
  it('writes a text message with its context, at the matching level', () => {
    const { lines, logger } = capture('trace');
    logger.log('started', 'Bootstrap');
    logger.warn('slow', 'TokenCache');
    logger.debug('detail', 'X');
    logger.verbose('more detail', 'X');
    logger.fatal('gone', 'Y');
    expect(lines).toEqual([
      { level: 'info', context: 'Bootstrap', msg: 'started' },
      { level: 'warn', context: 'TokenCache', msg: 'slow' },
      { level: 'debug', context: 'X', msg: 'detail' },
      { level: 'trace', context: 'X', msg: 'more detail' },
      { level: 'fatal', context: 'Y', msg: 'gone' },
    ]);
  });

  it('merges an object message into the line', () => {
    const { lines, logger } = capture();
    logger.log({ msg: 'token obtained', clientId: 'a.client', lifetimeSeconds: 1200 }, 'Fetcher');
    expect(lines).toEqual([
      {
        level: 'info',
        context: 'Fetcher',
        msg: 'token obtained',
        clientId: 'a.client',
        lifetimeSeconds: 1200,
      },
    ]);
  });

  it("logs an Error as `err`, and Nest's handlers' (message, stack, context) as one error", () => {
    const { lines, logger } = capture();
    logger.error(new Error('boom'), 'Scheduler');
    const stack = 'Error: broke\n    at handler (file.js:1:1)';
    logger.error('broke', stack, 'ExceptionsHandler');
    expect(lines[0]).toMatchObject({
      level: 'error',
      context: 'Scheduler',
      err: { type: 'Error', message: 'boom' },
    });
    expect(lines[1]).toMatchObject({
      level: 'error',
      context: 'ExceptionsHandler',
      err: { message: 'broke', stack },
    });
  });

  it('keeps the redaction of the root logger', () => {
    const { lines, logger } = capture();
    logger.log({ msg: 'oops', secret: 's3cr3t', request: { authorization: 'Bearer k' } }, 'Z');
    expect(JSON.stringify(lines)).not.toMatch(/s3cr3t|Bearer k/);
  });

  it('skips levels below the configured one', () => {
    const { lines, logger } = capture('warn');
    logger.log('not written', 'A');
    logger.debug('not written', 'A');
    logger.warn('written', 'A');
    expect(lines.map((l) => l.msg)).toEqual(['written']);
  });

  it('writes a message without a context', () => {
    const { lines, logger } = capture();
    logger.log('plain');
    expect(lines).toEqual([{ level: 'info', msg: 'plain' }]);
  });
});
