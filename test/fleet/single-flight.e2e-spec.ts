import { burst, note, obtainedLines, retriedAttempts, summarize, useFleet } from './fleet';
import { sleep, waitFor } from '../support';

/**
 * Single flight across a fleet: three token-vendor processes (the production entry point) on
 * one Redis in front of the sandbox IdP. Tokens live 40 s here (ratio 0.5), so no proactive
 * refresh falls inside these tests and every IdP request is accounted for.
 */
const CLIENTS = ['alpha.client', 'beta.client', 'gamma.client'];
const EXPIRES_IN = 40;
const MIN_TTL = 1;
const REFRESH = { ratio: 0.5, minTtlSeconds: MIN_TTL };

describe('fleet: single flight (3 processes, one Redis)', () => {
  // Generous IdP timeout: the sandbox shares the test process with the bursts, whose sending can
  // hold up its answers; an attempt that times out is retried (another IdP request, same flight).
  const suite = useFleet(CLIENTS, { expiresIn: EXPIRES_IN, timeoutMs: 2000, refresh: REFRESH });

  it('warms every client once for the whole fleet, and every replica serves that token', async () => {
    const f = suite.fleet;
    // Each replica schedules its warm-up within 2 s of start (WARM_SPREAD_MS): wait for every
    // client's token to be in Redis, then past the last possible warm-up of any replica.
    await waitFor(
      'every client warmed',
      async () => (await Promise.all(CLIENTS.map((c) => f.storedExpiry(c)))).every(Boolean),
      10_000,
    );
    await sleep(2_500);

    expect(suite.idp.stats().tokenRequests).toBe(CLIENTS.length);
    expect({ ...suite.idp.stats().byClient }).toEqual(
      Object.fromEntries(CLIENTS.map((c) => [c, 1])),
    );
    const fetchedBy = f.replicas.flatMap((r) =>
      CLIENTS.flatMap((c) => obtainedLines(r, c).map(() => `${r.name}:${c}`)),
    );
    expect(fetchedBy).toHaveLength(CLIENTS.length);

    for (const clientId of CLIENTS) {
      const answers = await Promise.all(f.replicas.map((r) => f.getToken(r, clientId)));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(new Set(answers.map((a) => a.body.access_token)).size).toBe(1);
    }
    expect(suite.idp.stats().tokenRequests).toBe(CLIENTS.length); // served from Redis / local copies
  }, 30_000);

  it('answers a 360-request burst over 3 replicas for a too-short token with ONE IdP request', async () => {
    const f = suite.fleet;
    const clientId = 'beta.client';
    const before = await f.getToken(f.replicas[0], clientId);
    expect(before.status).toBe(200);
    const warmedAt = suite.idp.requests().find((r) => r.clientId === clientId)!.at;
    // A held token younger than MIN_REFETCH_INTERVAL_MS (5 s) is never replaced for minTtl.
    await waitFor(
      'the warm token to be older than 5 s',
      () => Date.now() - warmedAt > 5_300,
      10_000,
      50,
    );

    // The held token has < 36 s left (it lives 39-40 s); a fresh one has more. The IdP answers
    // slowly, so the fetch is in flight while the burst lands on every replica.
    const minTtl = 36;
    expect(before.body.expires_in as number).toBeLessThan(40);
    suite.idp.resetStats();
    suite.idp.setFault({ mode: 'slow', delayMs: 400 });
    const obtainedBefore = f.replicas.map((r) => obtainedLines(r, clientId).length);
    const started = Date.now();
    const answers = await burst(f, f.replicas, clientId, 360, `minTtl=${minTtl}`);
    const elapsed = Date.now() - started;
    const stats = suite.idp.stats();
    suite.idp.clearFault();

    note('too-short burst', {
      elapsed,
      fetchedBy: f.replicas.map((r, i) => obtainedLines(r, clientId).length - obtainedBefore[i]),
    });
    expect(summarize(answers.filter((a) => a.status !== 200))).toBe('[]');
    const tokens = new Set(answers.map((a) => a.body.access_token));
    expect(tokens.size).toBe(1);
    expect(tokens.has(before.body.access_token)).toBe(false);
    expect(Math.min(...answers.map((a) => a.body.expires_in as number))).toBeGreaterThanOrEqual(
      minTtl,
    );
    // One fetch for the fleet: one IdP request, plus only the retries of that same fetch if an
    // attempt timed out because this (busy) test process answered late — none on an idle machine.
    await sleep(200); // the replicas' last log lines
    const retries = retriedAttempts(f.replicas, clientId, started);
    expect(Object.keys(retries).filter((cause) => cause !== 'timeout')).toEqual([]);
    expect(stats.tokenRequests).toBe(1 + (retries.timeout ?? 0));
    expect(stats.issued).toBeGreaterThanOrEqual(1);
    // Exactly one replica fetched (held the lock); the other two read its token from Redis.
    const fetched = f.replicas.map((r, i) => obtainedLines(r, clientId).length - obtainedBefore[i]);
    expect(fetched.reduce((a, b) => a + b, 0)).toBe(1);
    // Every replica took part in the burst.
    expect(new Set(answers.map((a) => a.replica)).size).toBe(3);
    expect(elapsed).toBeLessThan(10_000);
  }, 30_000);
});
