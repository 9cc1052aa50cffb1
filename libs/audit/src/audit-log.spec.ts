import { pino } from 'pino';
import { AUDIT_TEXT_MAX_LENGTH, AuditLog, auditText } from './audit-log';

describe('AuditLog', () => {
  it('writes one info line marked audit: true with exactly the given fields', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { base: undefined, timestamp: false },
      { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) },
    );
    new AuditLog(logger).write({
      msg: 'token request',
      requestId: 'r-1',
      caller: 'deals-service',
      outcome: 'served',
      clientId: 'a.client',
      expiresIn: 1190,
    });
    expect(lines).toEqual([
      {
        level: 30,
        audit: true,
        msg: 'token request',
        requestId: 'r-1',
        caller: 'deals-service',
        outcome: 'served',
        clientId: 'a.client',
        expiresIn: 1190,
      },
    ]);
  });
});

describe('auditText: caller text in audit lines', () => {
  it.each([
    ['plain text unchanged', 'api-fake-test.client', 'api-fake-test.client'],
    [
      'C0 controls, escape sequences and DEL stripped',
      'a\u0000b\nc\r\u001b[31md\u007f',
      'abc[31md',
    ],
    ['C1 controls stripped', 'x\u0085y\u009bz', 'xyz'],
    ['bidi overrides and isolates stripped', 'evil\u202ecod.exe\u2066', 'evilcod.exe'],
    ['line and paragraph separators stripped', 'one\u2028two\u2029', 'onetwo'],
    ['other Unicode kept', 'umgebung-ü-東京', 'umgebung-ü-東京'],
  ])('%s', (_case, input, expected) => {
    expect(auditText(input)).toBe(expected);
  });

  it('caps length, marking the cut', () => {
    const capped = auditText('x'.repeat(10_000));
    expect(capped).toHaveLength(AUDIT_TEXT_MAX_LENGTH);
    expect(capped.endsWith('…')).toBe(true);
    expect(auditText('y'.repeat(AUDIT_TEXT_MAX_LENGTH))).toBe('y'.repeat(AUDIT_TEXT_MAX_LENGTH));
  });

  it('is applied to every text field of a line, leaving numbers and booleans alone', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino(
      { base: undefined, timestamp: false },
      { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) },
    );
    new AuditLog(logger).write({
      msg: 'token request',
      requestId: 'r-1',
      caller: 'deals-service',
      outcome: 'unknown_client',
      clientId: `c\u001b]0;pwned\u0007${'z'.repeat(1000)}`,
      environment: 'uat\r\nfake: line',
      expiresIn: 5,
      known: false,
    });
    expect(lines[0]).toMatchObject({
      clientId: `c]0;pwned${'z'.repeat(AUDIT_TEXT_MAX_LENGTH - 10)}…`,
      environment: 'uatfake: line',
      expiresIn: 5,
      known: false,
    });
    expect(String(lines[0].clientId)).toHaveLength(AUDIT_TEXT_MAX_LENGTH);
  });
});
