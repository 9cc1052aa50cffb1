import { pino } from 'pino';
import { AUDIT_REDACTED_PATHS, createAuditLogger, createRootLogger } from './logger.options';

describe('createAuditLogger', () => {
  const lines: Record<string, unknown>[] = [];
  const audit = createAuditLogger(
    createRootLogger('info', {
      write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>),
    }),
  );

  beforeEach(() => lines.splice(0));

  it('names its lines context "Audit" on the root logger\'s base fields', () => {
    audit.info({ msg: 'token request', outcome: 'served' });
    expect(lines).toEqual([
      {
        level: 'info',
        time: expect.any(String),
        service: 'token-vendor',
        context: 'Audit',
        msg: 'token request',
        outcome: 'served',
      },
    ]);
  });

  it.each(AUDIT_REDACTED_PATHS)('redacts a top-level %s field', (field) => {
    audit.info({ msg: 'x', [field]: 'never-in-the-log-0001' });
    expect(lines[0][field]).toBe('[redacted]');
    expect(JSON.stringify(lines)).not.toContain('never-in-the-log-0001');
  });
});

describe('createRootLogger', () => {
  it('writes stdout synchronously when no stream is handed in', () => {
    const root = createRootLogger('info');
    const destination = (root as unknown as Record<symbol, { sync?: boolean; fd?: number }>)[
      pino.symbols.streamSym
    ];
    expect(destination.sync).toBe(true);
    expect(destination.fd).toBe(1);
  });
});
