import { failuresOf, note, startLoad, summarize, useFleet } from './fleet';
import { waitFor } from '../support';

/**
 * Proactive refresh under steady load: three processes, tokens living ~3 s (expires_in 4, the
 * sandbox's JWT exp is whole seconds and the service keeps the smaller), refresh at half life
 * (jittered up to 10 % earlier), ~20 requests/s spread over the replicas for ~14 s (4-5 token
 * lifetimes, ~9-10 refresh periods).
 */
const CLIENT = 'steady.client';
const EXPIRES_IN = 4;
const REFRESH = { ratio: 0.5, minTtlSeconds: 1 };
const LOAD_MS = 14_000;
const RATE = 20;

describe('fleet: steady load over several token lifetimes', () => {
  const suite = useFleet([CLIENT], { expiresIn: EXPIRES_IN, refresh: REFRESH, taps: true });

  it('serves every request, never below minTtl, with about one IdP request per refresh period for the whole fleet', async () => {
    const f = suite.fleet;
    await waitFor('the warm-up token', () => f.storedExpiry(CLIENT), 10_000);
    // The service believes the smaller of expires_in and the JWT's exp (whole seconds) counted
    // from when it sent the request: a token lives 3 s here, rarely 4.
    const shortestLifeMs = (EXPIRES_IN - 1) * 1000;
    const longestLifeMs = EXPIRES_IN * 1000;

    const tapCounts = f.taps.map((t) => t.records.length);
    const before = suite.idp.stats().tokenRequests;
    const load = startLoad(f, () => f.replicas, CLIENT, RATE);
    await new Promise((r) => setTimeout(r, LOAD_MS));
    const results = await load.stop();
    const idpRequests = suite.idp.stats().tokenRequests - before;
    const perReplica = f.taps.map((t, i) => t.records.length - tapCounts[i]);

    // Zero failures, and every token served had at least minTtl left.
    const failures = failuresOf(results, REFRESH.minTtlSeconds);
    expect(summarize(failures)).toBe('[]');
    expect(results.length).toBeGreaterThanOrEqual((LOAD_MS / 1000) * RATE * 0.8);
    expect(new Set(results.map((r) => r.replica)).size).toBe(3);

    // One refresh per period for the whole fleet. A period is ratio × lifetime, jittered up to
    // 10 % shorter, plus up to one scheduler tick (250 ms) and the fetch itself.
    const shortestPeriod = shortestLifeMs * REFRESH.ratio * 0.9;
    const longestPeriod = longestLifeMs * REFRESH.ratio + 250 + 500;
    const upper = Math.ceil(LOAD_MS / shortestPeriod) + 2;
    const lower = Math.floor(LOAD_MS / longestPeriod) - 1;
    const detail = JSON.stringify({ idpRequests, perReplica, lower, upper });
    note('steady', {
      idpRequests,
      perReplica,
      lower,
      upper,
      requests: results.length,
      distinctTokens: new Set(results.map((r) => r.body.access_token)).size,
    });
    expect(`${detail} within bounds: ${idpRequests >= lower && idpRequests <= upper}`).toBe(
      `${detail} within bounds: true`,
    );
    // Each replica refreshing on its own would take ~3 × the fleet's count.
    expect(idpRequests).toBeLessThan(3 * (LOAD_MS / (longestLifeMs * REFRESH.ratio)) * 0.6);
    expect(perReplica.reduce((a, b) => a + b, 0)).toBe(idpRequests);

    // Callers saw the token rotate: about one distinct token per refresh period.
    const distinct = new Set(results.map((r) => r.body.access_token)).size;
    expect(distinct).toBeGreaterThanOrEqual(lower);
    expect(distinct).toBeLessThanOrEqual(idpRequests + 1);
  }, 60_000);
});
