import { pino } from 'pino';
import { AuditLog } from './audit-log';

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
