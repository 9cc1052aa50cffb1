import { pino } from 'pino';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTasks } from '@app/periodic';
import { AuditLog } from './audit-log';
import {
  DISCLOSURE_SUMMARY_INTERVAL_MS,
  DisclosureLog,
  MAX_SOURCES_PER_SUMMARY,
  MAX_TRACKED_DISCLOSURES,
  type Disclosure,
} from './disclosure-log';
import { TestClock } from '../../../test/support/clock';

const START = Date.UTC(2026, 11, 1, 10, 0, 0);

describe('DisclosureLog', () => {
  let lines: Record<string, unknown>[];
  let clock: TestClock;
  let sut: DisclosureLog;

  const disclosure = (over: Partial<Disclosure> = {}): Disclosure => ({
    requestId: 'r-1',
    caller: 'deals-service',
    clientId: 'a.client',
    environment: 'uat',
    tokenFingerprint: 'abcd0123',
    expiresAt: START + 1_200_000,
    expiresIn: 1200,
    source: '10.0.0.1',
    ...over,
  });
  const summaries = () => lines.filter((l) => l.msg === 'token disclosures repeated');
  const firsts = () => lines.filter((l) => l.msg === 'token request');

  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    lines = [];
    clock = new TestClock({ start: START });
    const logger = pino(
      { base: undefined, timestamp: false },
      { write: (text: string) => lines.push(JSON.parse(text) as Record<string, unknown>) },
    );
    sut = new DisclosureLog(
      new AuditLog(logger),
      clock,
      new PeriodicTasks(new SchedulerRegistry()),
    );
  });

  afterEach(() => {
    sut.onApplicationShutdown();
    jest.useRealTimers();
  });

  it('counts each workload of a JWT caller apart and names it on its lines', () => {
    const podA = { workload: 'deals/deals-api', pod: 'deals-api-1', podUid: 'uid-1' };
    const podB = { workload: 'deals/deals-api', pod: 'deals-api-2', podUid: 'uid-2' };
    sut.served(disclosure({ presented: podA }));
    sut.served(disclosure({ presented: podB }));
    sut.served(disclosure({ presented: podA }));
    sut.served(disclosure({ presented: podA }));
    sut.served(disclosure({ presented: podB }));
    expect(firsts().map((l) => [l.workload, l.pod, l.podUid])).toEqual([
      ['deals/deals-api', 'deals-api-1', 'uid-1'],
      ['deals/deals-api', 'deals-api-2', 'uid-2'],
    ]);
    sut.flush();
    expect(summaries().map((l) => [l.pod, l.count])).toEqual([
      ['deals-api-1', 2],
      ['deals-api-2', 1],
    ]);
  });

  it('writes the first disclosure at once, with the request id and source', () => {
    sut.served(disclosure());
    expect(lines).toEqual([
      {
        level: 30,
        audit: true,
        msg: 'token request',
        requestId: 'r-1',
        caller: 'deals-service',
        clientId: 'a.client',
        environment: 'uat',
        outcome: 'served',
        tokenFingerprint: 'abcd0123',
        expiresIn: 1200,
        source: '10.0.0.1',
      },
    ]);
  });

  it('1,000 repeats over 25 s: summaries at least every 10 s whose counts add up to 1,000', async () => {
    sut.served(disclosure());
    for (let i = 0; i < 1000; i++) {
      await clock.advance(25);
      jest.advanceTimersByTime(25);
      sut.served(disclosure({ requestId: `r-${i + 2}`, source: `10.0.0.${(i % 3) + 1}` }));
    }
    expect(firsts()).toHaveLength(1);
    // Two timer flushes so far (10 s, 20 s); the rest is written at shutdown.
    expect(summaries()).toHaveLength(2);
    sut.onApplicationShutdown();
    const counts = summaries().map((s) => s.count as number);
    expect(counts).toEqual([399, 400, 201]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(summaries()[0]).toEqual({
      level: 30,
      audit: true,
      msg: 'token disclosures repeated',
      caller: 'deals-service',
      clientId: 'a.client',
      environment: 'uat',
      outcome: 'served',
      tokenFingerprint: 'abcd0123',
      count: 399,
      firstAt: new Date(START + 25).toISOString(),
      lastAt: new Date(START + 9_975).toISOString(),
      sources: ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
    });
  });

  it('writes nothing on a flush when nothing repeated', () => {
    sut.served(disclosure());
    jest.advanceTimersByTime(DISCLOSURE_SUMMARY_INTERVAL_MS * 3);
    expect(summaries()).toEqual([]);
  });

  it('keeps callers, clients, environments and tokens apart', () => {
    const variants = [
      disclosure(),
      disclosure({ caller: 'other-service' }),
      disclosure({ clientId: 'b.client' }),
      disclosure({ environment: 'production' }),
      disclosure({ tokenFingerprint: 'ffff0000' }),
      disclosure({ expiresAt: START + 1_300_000 }), // another token, same short fingerprint
    ];
    for (const d of variants) sut.served(d);
    for (const d of variants) sut.served(d);
    expect(firsts()).toHaveLength(6);
    sut.flush();
    expect(summaries().map((s) => s.count)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it(`names at most ${MAX_SOURCES_PER_SUMMARY} sources and counts the others`, () => {
    sut.served(disclosure());
    for (let i = 0; i < 20; i++) sut.served(disclosure({ source: `10.1.0.${i}` }));
    sut.flush();
    expect(summaries()[0]).toMatchObject({ count: 20, sourcesOmitted: 4 });
    expect(summaries()[0].sources).toHaveLength(MAX_SOURCES_PER_SUMMARY);
  });

  it("forgets an expired token's record: its next request is a first disclosure again", async () => {
    sut.served(disclosure({ expiresAt: START + 5_000 }));
    await clock.advance(6_000);
    sut.flush();
    sut.served(disclosure({ expiresAt: START + 5_000, requestId: 'late' }));
    expect(firsts().map((l) => l.requestId)).toEqual(['r-1', 'late']);
  });

  it('past the tracking bound, summarizes and starts over (more lines, never fewer)', () => {
    for (let i = 0; i < MAX_TRACKED_DISCLOSURES; i++)
      sut.served(disclosure({ clientId: `c${i}`, source: undefined }));
    sut.served(disclosure({ clientId: 'c0' })); // a repeat, counted
    sut.served(disclosure({ clientId: 'one-more' })); // over the bound: flush and forget
    expect(summaries()).toEqual([expect.objectContaining({ clientId: 'c0', count: 1 })]);
    sut.served(disclosure({ clientId: 'c0', requestId: 'again' }));
    expect(firsts().at(-1)).toMatchObject({ clientId: 'c0', requestId: 'again' });
  });

  it('shutdown writes the pending counts; later disclosures are written one by one', () => {
    sut.served(disclosure());
    sut.served(disclosure());
    sut.onApplicationShutdown();
    expect(summaries().map((s) => s.count)).toEqual([1]);
    sut.served(disclosure({ requestId: 'after' }));
    expect(firsts().map((l) => l.requestId)).toEqual(['r-1', 'after']);
  });
});
