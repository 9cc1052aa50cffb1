import {
  atSettledInstant,
  failuresOf,
  note,
  retriedAttempts,
  secondsWithoutAnswer,
  startLoad,
  summarize,
  useFleet,
} from './fleet';
import { type Replica, sleep, waitFor } from '../support';

/**
 * Redis dies under load and comes back on the same port. The fleet runs on a throwaway
 * redis-server of its own (never the shared one). Tokens live ~5 s (expires_in 6), refresh at
 * half life (2.25-2.5 s), minTtl 1 s.
 */
const CLIENT = 'redis-outage.client';
const EXPIRES_IN = 6;
const REFRESH = { ratio: 0.5, minTtlSeconds: 1 };
const OUTAGE_MS = 4_500;
/** The fleet's IdP timeout (useFleet's default). */
const TIMEOUT_MS = 500;

async function tokenStoreState(replica: Replica): Promise<{ status: number; state?: unknown }> {
  const res = await fetch(`${replica.url}/health/ready`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { info?: { tokenStore?: { state?: unknown } } };
  return { status: res.status, state: body.info?.tokenStore?.state };
}

describe('fleet: Redis outage under load', () => {
  const suite = useFleet([CLIENT], { expiresIn: EXPIRES_IN, refresh: REFRESH, ownRedis: true });

  it('keeps serving from the replicas while Redis is down, and writes to it again once it is back, without a restart', async () => {
    const f = suite.fleet;
    const storedExpiry = (): Promise<number | undefined> =>
      f.storedExpiry(CLIENT).catch(() => undefined);
    const first = await waitFor('the warm-up token', storedExpiry, 10_000);
    const load = startLoad(f, () => f.replicas, CLIENT, 20);
    try {
      // Kill Redis soon after a refresh (before the next one is due), so every replica holds a
      // fresh token.
      await waitFor(
        'a refreshed token',
        async () => ((await storedExpiry()) ?? 0) > first,
        10_000,
        10,
      );
      // The IdP count starts at a settled instant (no IdP request in flight or due), so a
      // retried attempt is counted with its retry line. With the lock, the fleet is quiet for
      // most of a refresh period after a refresh, so this comes well before the next one.
      const before = await atSettledInstant(
        suite,
        TIMEOUT_MS,
        () => suite.idp.stats().tokenRequests,
      );
      await suite.redis!.kill();
      const killedAt = Date.now();
      await sleep(1_000);
      const during = await Promise.all(f.replicas.map(tokenStoreState));
      await sleep(OUTAGE_MS - 1_000);

      await suite.redis!.restart();
      const restartedAt = Date.now();
      const written = await waitFor(
        'a token written to the restarted Redis',
        storedExpiry,
        10_000,
        50,
      );
      const rewriteMs = Date.now() - restartedAt;
      await sleep(500);
      const after = await Promise.all(f.replicas.map(tokenStoreState));
      // The count ends at the next settled instant: while Redis is down the three replicas
      // refresh on their own, drifting apart, so the fleet need not be quiet before the restart;
      // back on the lock, it is again between refreshes.
      const end = await atSettledInstant(suite, TIMEOUT_MS, () => suite.idp.stats().tokenRequests);
      const results = await load.stop();
      const windowMs = end.at - before.at;
      const idpRequests = end.value - before.value;
      // A fetch whose attempt timed out (500 ms, the sandbox answering from this busy process)
      // sends it again: the same refresh, not another one. Nothing else is retried here.
      const retries = retriedAttempts(f.replicas, CLIENT, before.at, end.at);
      const fetches = idpRequests - (retries.timeout ?? 0);
      note('redis outage', {
        windowMs,
        fetches,
        idpRequests,
        retries,
        rewriteMs,
        requests: results.length,
      });

      // Readiness reports Redis down but stays 200 (a shared dependency never fails it).
      expect(during).toEqual(f.replicas.map(() => ({ status: 200, state: 'down' })));
      expect(after).toEqual(f.replicas.map(() => ({ status: 200, state: 'up' })));
      // Zero failures for the callers: every replica held the token, then fetched its own.
      expect(summarize(failuresOf(results, REFRESH.minTtlSeconds))).toBe('[]');
      // Served throughout the outage: every replica answered in every second of it (a count of
      // answers would measure the load's timer, which drifts on a busy machine).
      expect(secondsWithoutAnswer(results, f.replicas, killedAt, restartedAt)).toEqual([]);
      const inOutage = results.filter((r) => r.at >= killedAt && r.at < restartedAt);
      expect(new Set(inOutage.map((r) => r.replica)).size).toBe(3);
      // Without the shared lock each replica refreshes for itself (in-process single flight
      // only): at most one fetch per replica per refresh period, over the counted window (the
      // outage and the settled instants around it; with the lock, fewer). The replicas did
      // fetch during the outage: an IdP request was sent while Redis was down.
      expect(Object.keys(retries).filter((cause) => cause !== 'timeout')).toEqual([]);
      const shortestPeriod = (EXPIRES_IN - 1) * 1000 * REFRESH.ratio * 0.9;
      const upper = 3 * (Math.ceil(windowMs / shortestPeriod) + 1);
      expect(
        suite.idp.requests().filter((q) => q.at >= killedAt && q.at < restartedAt).length,
      ).toBeGreaterThanOrEqual(1);
      expect(`${fetches} ≤ ${upper}: ${fetches <= upper}`).toBe(`${fetches} ≤ ${upper}: true`);
      // Back without a restart: the reconnect (≤ 2 s backoff) and the next refresh (≤ half a
      // token life, plus a scheduler tick) put a token in Redis again.
      expect(written).toBeGreaterThan(restartedAt);
      expect(rewriteMs).toBeLessThan(2_000 + EXPIRES_IN * 1000 * REFRESH.ratio + 1_500);
      expect(f.replicas.every((r) => r.alive)).toBe(true);
    } finally {
      await load.stop();
    }
  }, 60_000);
});
