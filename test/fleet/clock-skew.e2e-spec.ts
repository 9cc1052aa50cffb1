import { TEST_WALL_CLOCK_OFFSET_ENV } from '@app/clock';
import {
  atSettledInstant,
  failuresOf,
  note,
  retriedAttempts,
  secondsWithoutAnswer,
  summarize,
  useFleet,
} from './fleet';
import { type Fleet, type Replica, sleep, type TokenAnswer, waitFor } from '../support';

/**
 * One clock for the fleet (README "Which clock decides what"): three replicas on one Redis,
 * r2's wall clock 5 minutes ahead and r3's 5 minutes behind (the test-only wall-clock offset of
 * the injectable clock, TOKEN_VENDOR_TEST_WALL_CLOCK_OFFSET_MS, in their own processes), r1
 * correct. Tokens live ~5 s (expires_in 6; the JWT's exp is whole seconds and the service keeps
 * the smaller), so ~16 s of load covers several lifetimes and refreshes by every replica. A
 * refresh has 1.5 s or more before the token drops below minTtl, room for a busy CI machine (the
 * steady-load suite's reason).
 * A token's real life is its JWT `exp`, stamped by the sandbox IdP in this (correct) process.
 */
const CLIENT = 'clock.client';
const EXPIRES_IN = 6;
const REFRESH = { ratio: 0.5, minTtlSeconds: 1 };
const LOAD_MS = 16_000;
const RATE = 20;
const SKEW_MS = 5 * 60_000;
/** The fleet's IdP timeout (useFleet's default). */
const TIMEOUT_MS = 500;

interface TimedAnswer extends TokenAnswer {
  receivedAt: number;
}

/** The `exp` claim (seconds) of a sandbox JWT. */
function expOf(token: string): number {
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as {
    exp: number;
  };
  return payload.exp;
}

/** Answers carrying a token whose real life (its exp) had ended when the answer arrived. */
function dead(results: TimedAnswer[]): TimedAnswer[] {
  return results.filter(
    (r) =>
      typeof r.body.access_token === 'string' && expOf(r.body.access_token) * 1000 <= r.receivedAt,
  );
}

/** Answers whose expires_in is above the token's real remaining life (at sending) by more than 1 s. */
function overstated(results: TimedAnswer[]): TimedAnswer[] {
  return results.filter(
    (r) =>
      typeof r.body.access_token === 'string' &&
      typeof r.body.expires_in === 'number' &&
      r.body.expires_in > (expOf(r.body.access_token) * 1000 - r.at) / 1000 + 1,
  );
}

async function timedGet(fleet: Fleet, replica: Replica): Promise<TimedAnswer> {
  const answer = await fleet.getToken(replica, CLIENT);
  return { ...answer, receivedAt: Date.now() };
}

async function readyBody(replica: Replica): Promise<{ info: Record<string, unknown> }> {
  const res = await fetch(`${replica.url}/health/ready`);
  expect(res.status).toBe(200);
  return (await res.json()) as { info: Record<string, unknown> };
}

async function skewMetric(replica: Replica): Promise<number | undefined> {
  const text = await (await fetch(`${replica.metricsUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('token_vendor_clock_skew_seconds '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('fleet: one replica wall clock 5 minutes ahead, one 5 minutes behind', () => {
  const suite = useFleet([CLIENT], {
    expiresIn: EXPIRES_IN,
    refresh: REFRESH,
    replicaEnv: (i) => ({ [TEST_WALL_CLOCK_OFFSET_ENV]: String([0, SKEW_MS, -SKEW_MS][i]) }),
  });

  it('shows each replica its skew against Redis in /health/ready (ready all the same) and the metric, and logs it once', async () => {
    const [r1, r2, r3] = suite.fleet.replicas;
    for (const [replica, expected, state] of [
      [r1, 0, 'in-sync'],
      [r2, SKEW_MS / 1000, 'skewed'],
      [r3, -SKEW_MS / 1000, 'skewed'],
    ] as const) {
      const body = await readyBody(replica);
      const clock = body.info.clock as {
        status: string;
        reference: string;
        state: string;
        skewSeconds: number;
      };
      expect({ ...clock, skewSeconds: undefined }).toEqual({
        status: 'up',
        reference: 'redis',
        state,
        skewSeconds: undefined,
        toleranceSeconds: 2,
      });
      expect(Math.abs(clock.skewSeconds - expected)).toBeLessThan(1);
      const metric = await skewMetric(replica);
      expect(Math.abs(metric! - expected)).toBeLessThan(1);
    }
    // Probed again and again: still one line per skewed replica, none for the correct one.
    for (let i = 0; i < 3; i++) for (const r of suite.fleet.replicas) await readyBody(r);
    const skewLines = (r: Replica) =>
      r.entries().filter((e) => String(e.msg).includes("wall clock disagrees with Redis's"));
    expect(skewLines(r1)).toHaveLength(0);
    expect(skewLines(r2)).toHaveLength(1);
    expect(skewLines(r3)).toHaveLength(1);
    expect(skewLines(r2)[0]).toMatchObject({ level: 'warn', skewSeconds: expect.any(Number) });
  });

  it('over several token lifetimes: no dead token, expires_in never above the real remaining life by more than 1 s, and the IdP requests of correct clocks', async () => {
    const f = suite.fleet;
    await waitFor('the warm-up token', () => f.storedExpiry(CLIENT), 10_000);
    // Counted between settled instants (no IdP request in flight or due), so each retried
    // attempt is counted with the retry line that caused it.
    const before = await atSettledInstant(suite, TIMEOUT_MS, () => suite.idp.stats().tokenRequests);
    const loadFrom = Date.now();
    const results: TimedAnswer[] = [];
    const pending = new Set<Promise<void>>();
    let n = 0;
    const timer = setInterval(
      () => {
        const replica = f.replicas[n++ % f.replicas.length];
        const p = timedGet(f, replica).then((r) => {
          results.push(r);
          pending.delete(p);
        });
        pending.add(p);
      },
      Math.round(1000 / RATE),
    );
    await sleep(LOAD_MS);
    clearInterval(timer);
    const loadTo = Date.now();
    while (pending.size > 0) await Promise.all([...pending]);
    const after = await atSettledInstant(suite, TIMEOUT_MS, () => suite.idp.stats().tokenRequests);
    const windowMs = after.at - before.at;
    const idpRequests = after.value - before.value;
    // A fetch whose attempt timed out (500 ms, the sandbox answering from this busy process)
    // sends it again: the same refresh, not another one. Nothing else is retried here.
    const retries = retriedAttempts(f.replicas, CLIENT, before.at, after.at);
    expect(Object.keys(retries).filter((cause) => cause !== 'timeout')).toEqual([]);
    const fetches = idpRequests - (retries.timeout ?? 0);

    expect(summarize(failuresOf(results, REFRESH.minTtlSeconds))).toBe('[]');
    // Served throughout: every replica answered in every second of the load (a count of
    // answers would measure the load's timer, which drifts on a busy machine).
    expect(secondsWithoutAnswer(results, f.replicas, loadFrom, loadTo)).toEqual([]);
    expect(new Set(results.map((r) => r.replica)).size).toBe(3);
    expect(summarize(dead(results))).toBe('[]');
    expect(summarize(overstated(results))).toBe('[]');

    // What correct clocks give (the steady-load suite's bound): one refresh per period for the
    // whole fleet over the counted window, a period being ratio × lifetime (5-6 s here),
    // jittered up to 10 % shorter.
    const shortestPeriod = (EXPIRES_IN - 1) * 1000 * REFRESH.ratio * 0.9;
    const upper = Math.ceil(windowMs / shortestPeriod) + 2;
    const distinct = new Set(results.map((r) => r.body.access_token)).size;
    note('clock-skew', {
      windowMs,
      fetches,
      idpRequests,
      retries,
      upper,
      requests: results.length,
      distinct,
    });
    expect(`${fetches} ≤ ${upper}: ${fetches <= upper}`).toBe(`${fetches} ≤ ${upper}: true`);
  }, 60_000);

  it('a replica paused (SIGSTOP) for longer than a token lives serves no dead token when resumed', async () => {
    const f = suite.fleet;
    const paused = f.replicas[0];
    const first = await timedGet(f, paused);
    expect(first.status).toBe(200);
    const heldExp = expOf(String(first.body.access_token)) * 1000;
    paused.kill('SIGSTOP');
    // Past the held token's real life, and then some: the others keep refreshing meanwhile.
    await sleep(Math.max(heldExp - Date.now() + 1_500, EXPIRES_IN * 1000 + 500));
    paused.kill('SIGCONT');
    const results: TimedAnswer[] = [];
    for (let i = 0; i < 10; i++) {
      results.push(await timedGet(f, paused));
      await sleep(100);
    }
    expect(summarize(failuresOf(results, REFRESH.minTtlSeconds))).toBe('[]');
    expect(summarize(dead(results))).toBe('[]');
    expect(summarize(overstated(results))).toBe('[]');
    expect(results.every((r) => r.body.access_token !== first.body.access_token)).toBe(true);
  }, 30_000);
});
