import { Redis } from 'ioredis';
import { startIdentitySandbox, type Fault, type RunningSandbox } from '@app/identity-sandbox';
import { tokenFingerprint } from '@app/observability';
import { RedisKeys } from '@app/token-store';
import { MIN_REFETCH_INTERVAL_MS, REJECTION_HOLD_MS } from '@app/tokens';
import { DEFAULT_MAX_ATTEMPTS, MAX_LIFETIME_SECONDS } from '@app/upstream';
import { expectAlive, expectError, expectStatus } from './harness';
import {
  httpRequest,
  type InProcessService,
  requireTestRedisUrl,
  type SimpleResponse,
  startService,
  TestClock,
  waitFor,
} from '../support';

/**
 * The IdP fault table (README "Security and failure behaviour"), against the sandbox over HTTP,
 * the service built as main.ts builds it, on the shared Redis (own prefix).
 *
 * Cold (no token held): the documented status and JSON body (README "API"), the IdP attempts
 * the retry policy allows (3 for network errors, timeouts, 5xx, 429; 1 for refusals and bad
 * answers), nothing cached, the process alive, and after the fault clears the next request
 * fetches a NEW token.
 * Warm (a valid token held): the held token keeps being served with no IdP call, and a forced
 * refresh during the fault (POST /admin/.../refresh) neither replaces nor loses it.
 *
 * timeoutMs is 300 so timeouts and retries stay fast. The clock is the system clock plus an
 * offset the test moves, to step over the 30 s rejection hold without waiting for it.
 */
const SECRET = 'idp-faults-secret-0001';
const KEY = 'idp-faults-caller-key-0001-aaaaaaaaaaaa';
const ADMIN_KEY = 'idp-faults-admin-key-0002-bbbbbbbbbbbb';
const TIMEOUT_MS = 300;
const DEFAULT_JWT_LIFETIME = 1200;
/** How much earlier than the true instant a shown `expires_at` can be, from ms truncation. */
const WALL_CLOCK_ROUNDING_MS = 2;
/**
 * How far a skew measurement the service keeps can be from the true offset: half its round trip
 * to Redis, and it keeps none whose round trip took over 100 ms (CLOCK_SKEW_MAX_ROUND_TRIP_MS in
 * clock-skew.monitor.ts); plus 1 ms for the report's rounding to whole ms.
 */
const SKEW_MEASUREMENT_TOLERANCE_MS = 100 / 2 + 1;
const UNAVAILABLE = 'The identity provider is unavailable: ';

type Expected =
  | { status: 503; message: string | RegExp; retryAfter: string }
  | { status: 502; message: string }
  /** 200 with `expires_in` in [lo, hi] (before the clock offset is taken off JWT-bound ones). */
  | { status: 200; expiresIn: [number, number]; jwtBound: boolean }
  /** A valid but too-short token: 503 for the default minTtl; held, but not served. */
  | { status: 'too_short'; lifetime: number };

interface FaultCase {
  name: string;
  fault: Fault;
  /** IdP requests one fetch makes under this fault. */
  attempts: number;
  expected: Expected;
  /** The sandbox's JWT lifetime (`exp`) during the case. */
  jwtLifetime?: number;
  /** Minimum wall time of the cold request (Retry-After waited out). */
  minElapsedMs?: number;
  maxElapsedMs?: number;
}

const after3 = (detail: string): string => `${UNAVAILABLE}${detail} (attempt 3 of 3)`;

const CASES: FaultCase[] = [
  // Retryable: network errors, timeouts, 5xx, 429 → 3 attempts, then 503 with Retry-After.
  {
    name: 'HTTP 500',
    fault: { mode: 'status_500' },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3('the token endpoint answered HTTP 500'),
      retryAfter: '5',
    },
  },
  {
    name: 'HTTP 503 without Retry-After',
    fault: { mode: 'status_503' },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3('the token endpoint answered HTTP 503'),
      retryAfter: '5',
    },
  },
  {
    name: 'HTTP 503 with Retry-After: 1',
    fault: { mode: 'status_503', retryAfter: 1 },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3('the token endpoint answered HTTP 503'),
      retryAfter: '1',
    },
    minElapsedMs: 1900,
  },
  {
    name: 'HTTP 429 with Retry-After: 1 (waited out between attempts)',
    fault: { mode: 'status_429', retryAfter: 1 },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3('the token endpoint answered HTTP 429'),
      retryAfter: '1',
    },
    minElapsedMs: 1900,
  },
  {
    name: 'HTTP 429 with Retry-After: 60 (longer than 30 s: retries end at once)',
    fault: { mode: 'status_429', retryAfter: 60 },
    attempts: 1,
    expected: {
      status: 503,
      message: `${UNAVAILABLE}the token endpoint answered HTTP 429 (attempt 1 of 3)`,
      retryAfter: '60',
    },
    maxElapsedMs: 1000,
  },
  {
    name: 'timeout (no answer)',
    fault: { mode: 'timeout' },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3(`no answer within ${TIMEOUT_MS} ms`),
      retryAfter: '5',
    },
    minElapsedMs: 3 * TIMEOUT_MS - 50,
  },
  {
    name: 'slow (1000 ms, slower than timeoutMs)',
    fault: { mode: 'slow', delayMs: 1000 },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      message: after3(`no answer within ${TIMEOUT_MS} ms`),
      retryAfter: '5',
    },
  },
  {
    name: 'connection reset',
    fault: { mode: 'reset' },
    attempts: DEFAULT_MAX_ATTEMPTS,
    expected: {
      status: 503,
      // The cause is the system error code in production; under Jest's VM realm the
      // `instanceof Error` check in networkCause() fails and it reads "unknown".
      message:
        /^The identity provider is unavailable: network error \([A-Za-z_]+\) \(attempt 3 of 3\)$/,
      retryAfter: '5',
    },
  },
  // Not retryable: a 200 that is not a valid Bearer token answer → 1 attempt, 503.
  ...(
    [
      ['HTML body', { mode: 'html' }, 'the token endpoint answer is not a JSON object'],
      [
        'truncated JSON',
        { mode: 'truncated_json' },
        'the token endpoint answer is not a JSON object',
      ],
      ['no access_token', { mode: 'no_access_token' }, 'the answer has no access_token'],
      ['token_type mac', { mode: 'wrong_token_type' }, 'the token_type is missing or not Bearer'],
      ['expires_in 0', { mode: 'expires_in', expiresIn: 0 }, 'expires_in is not positive'],
      ['expires_in -1', { mode: 'expires_in', expiresIn: -1 }, 'expires_in is not positive'],
      ['expires_in 0.5', { mode: 'expires_in', expiresIn: 0.5 }, 'expires_in is not positive'],
      [
        'expires_in "abc"',
        { mode: 'expires_in', expiresIn: 'abc' },
        'expires_in is neither a number nor a numeric string',
      ],
      [
        'expires_in "1e3"',
        { mode: 'expires_in', expiresIn: '1e3' },
        'expires_in is neither a number nor a numeric string',
      ],
      [
        'expires_in true',
        { mode: 'expires_in', expiresIn: true },
        'expires_in is neither a number nor a numeric string',
      ],
    ] as [string, Fault, string][]
  ).map(([name, fault, detail]): FaultCase => ({
    name,
    fault,
    attempts: 1,
    expected: { status: 503, message: `${UNAVAILABLE}${detail}`, retryAfter: '5' },
  })),
  // The valid expires_in forms and the README's rule.
  {
    name: 'expires_in "1200" (numeric string; the JWT allows 3000 s)',
    fault: { mode: 'expires_in', expiresIn: '1200' },
    jwtLifetime: 3000,
    attempts: 1,
    expected: { status: 200, expiresIn: [1195, 1200], jwtBound: false },
  },
  {
    name: 'expires_in 3.5 (floored to 3 s, shorter than the default minTtl 30)',
    fault: { mode: 'expires_in', expiresIn: 3.5 },
    attempts: 1,
    expected: { status: 'too_short', lifetime: 3 },
  },
  {
    name: 'expires_in 1e12 (clamped to 86400 s; the JWT allows 200000 s)',
    fault: { mode: 'expires_in', expiresIn: 1e12 },
    jwtLifetime: 200_000,
    attempts: 1,
    expected: {
      status: 200,
      expiresIn: [MAX_LIFETIME_SECONDS - 5, MAX_LIFETIME_SECONDS],
      jwtBound: false,
    },
  },
  {
    name: 'expires_in 1e12 (bounded by the JWT exp, 1200 s)',
    fault: { mode: 'expires_in', expiresIn: 1e12 },
    attempts: 1,
    expected: { status: 200, expiresIn: [1195, 1200], jwtBound: true },
  },
  {
    name: 'expires_in missing (the JWT exp, 1500 s)',
    fault: { mode: 'expires_in', expiresIn: null },
    jwtLifetime: 1500,
    attempts: 1,
    expected: { status: 200, expiresIn: [1495, 1500], jwtBound: true },
  },
  // Refusals: never retried, 502, then held for 30 s without calling the IdP.
  {
    name: 'invalid_client',
    fault: { mode: 'invalid_client' },
    attempts: 1,
    expected: {
      status: 502,
      message: 'The identity provider refused the credentials or scope (invalid_client).',
    },
  },
  {
    name: 'invalid_scope',
    fault: { mode: 'invalid_scope' },
    attempts: 1,
    expected: {
      status: 502,
      message: 'The identity provider refused the credentials or scope (invalid_scope).',
    },
  },
];

const coldId = (i: number): string => `cold-${i}.client`;
const warmId = (i: number): string => `warm-${i}.client`;

interface AdminClientView {
  clientId: string;
  hasToken: boolean;
  expiresAt?: string;
  tokenFingerprint?: string;
}

describe('IdP fault table (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  let redis: Redis;
  let keys: RedisKeys;
  const clock = new TestClock({ start: 'system', sleeps: 'real' });
  /** Every access token any answer carried: "a NEW token" means not in here. */
  const seen = new Set<string>();

  beforeAll(async () => {
    const ids = CASES.flatMap((_c, i) => [coldId(i), warmId(i)]);
    idp = await startIdentitySandbox({
      clients: ids.map((clientId) => ({ clientId, secret: SECRET })),
      expiresIn: DEFAULT_JWT_LIFETIME,
    });
    svc = await startService({
      scheduler: false,
      clock,
      redis: true,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: TIMEOUT_MS } },
      clients: ids.map((clientId) => ({ clientId, environment: 'uat', secret: SECRET })),
      callers: [
        { name: 'caller', keys: [KEY], clients: ['*'] },
        { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
      ],
    });
    redis = new Redis(requireTestRedisUrl(), { maxRetriesPerRequest: 1 });
    keys = new RedisKeys(svc.keyPrefix);
  });

  afterAll(async () => {
    redis?.disconnect();
    await svc?.close();
    await idp?.close();
  });

  beforeEach(() => {
    idp.clearFault();
    idp.setExpiresIn(DEFAULT_JWT_LIFETIME);
  });

  const getToken = async (clientId: string, query = ''): Promise<SimpleResponse> => {
    const res = await httpRequest(`${svc.url}/tokens/${clientId}${query}`, { key: KEY });
    if (res.status === 200) seen.add(res.json().access_token);
    return res;
  };
  const adminRefresh = (clientId: string): Promise<SimpleResponse> =>
    httpRequest(`${svc.url}/admin/clients/${clientId}/refresh`, { key: ADMIN_KEY, method: 'POST' });
  const adminView = async (clientId: string): Promise<AdminClientView> => {
    const res = await httpRequest(`${svc.url}/admin/clients`, { key: ADMIN_KEY });
    expectStatus(res, 200);
    return (res.json().clients as AdminClientView[]).find((c) => c.clientId === clientId)!;
  };
  /** The clear expiry (ms) of the client's Redis entry, or undefined when there is none. */
  const storedExpiry = async (clientId: string): Promise<number | undefined> => {
    const raw = await redis.get(keys.token({ environment: 'uat', clientId }));
    return raw === null ? undefined : Number(raw.slice(0, raw.indexOf('|')));
  };
  /**
   * The stored expiry is stamped in Redis's time; an answer shows the service's (offset) wall
   * clock plus the remaining life: the same instant, less the offset, to within round trips.
   */
  const expectStoredExpiry = async (clientId: string, shownMs: number): Promise<void> => {
    const stored = await storedExpiry(clientId);
    expect(stored).toBeDefined();
    expect(Math.abs(stored! - (shownMs - clock.advancedMs))).toBeLessThanOrEqual(250);
  };
  /**
   * Moves the service's clock forward (wall and monotonic) and Redis's stored lives with it,
   * then lets the service measure its wall clock
   * against Redis's again (each readiness probe does): a JWT's `exp` is compared with the
   * corrected wall time (README "Which clock decides what"), so the offset shifts no JWT-bound
   * lifetime. A probe whose Redis TIME took over 100 ms to come back keeps the last measurement
   * (clock-skew.monitor.ts), so probes are repeated until one reports the offset.
   */
  const advance = async (ms: number): Promise<void> => {
    await clock.advance(ms);
    // Time passes for Redis too: the stored tokens' remaining lives shrink by as much.
    for (const key of await redis.keys(`${svc.keyPrefix}*:token`)) {
      const left = await redis.pttl(key);
      if (left > ms) await redis.pexpire(key, left - ms);
      else if (left > 0) await redis.del(key);
    }
    await waitFor(
      `readiness to report the clock advanced by ${clock.advancedMs} ms as its skew`,
      async () => {
        const ready = await httpRequest(`${svc.url}/health/ready`);
        expectStatus(ready, 200);
        // Undefined (unmeasured) gives NaN: not yet.
        const skewMs = Number(ready.json().info.clock.skewSeconds) * 1000;
        return Math.abs(skewMs - clock.advancedMs) <= SKEW_MEASUREMENT_TOLERANCE_MS;
      },
      5_000,
      50,
    );
  };
  const expectExpiresIn = (actual: number, e: Extract<Expected, { status: 200 }>): void => {
    expect(actual).toBeGreaterThanOrEqual(e.expiresIn[0]);
    expect(actual).toBeLessThanOrEqual(e.expiresIn[1]);
  };
  /** The error answer of a failed fetch, on GET /tokens and POST /admin/.../refresh alike. */
  const expectFailure = (res: SimpleResponse, e: Expected): void => {
    if (e.status === 503) {
      expectError(res, 503, 'upstream_unavailable', e.message);
      expect(res.headers['retry-after']).toBe(e.retryAfter);
    } else if (e.status === 502) {
      expectError(res, 502, 'upstream_rejected', e.message);
    } else if (e.status === 'too_short') {
      expectError(
        res,
        503,
        'upstream_unavailable',
        `${UNAVAILABLE}the identity provider issued a token shorter than the minimum time to live`,
      );
      expect(res.headers['retry-after']).toBe('5');
    }
  };

  describe('cold: no token held', () => {
    it.each(CASES.map((c, i) => [c.name, c, i] as const))(
      '%s',
      async (_name, c, i) => {
        const clientId = coldId(i);
        if (c.jwtLifetime) idp.setExpiresIn(c.jwtLifetime);
        idp.resetStats();
        idp.setFault(c.fault);
        const t0 = clock.now();
        const started = Date.now();
        const res = await getToken(clientId);
        const elapsed = Date.now() - started;
        const t1 = clock.now();
        idp.clearFault();
        expect(idp.stats().tokenRequests).toBe(c.attempts);
        if (c.minElapsedMs !== undefined) expect(elapsed).toBeGreaterThanOrEqual(c.minElapsedMs);
        if (c.maxElapsedMs !== undefined) expect(elapsed).toBeLessThan(c.maxElapsedMs);
        await expectAlive(svc.url);

        const e = c.expected;
        if (e.status === 200) {
          expectStatus(res, 200);
          expect(res.headers['cache-control']).toBe('no-store');
          const body = res.json();
          expect(body).toMatchObject({
            token_type: 'Bearer',
            client_id: clientId,
            environment: 'uat',
          });
          expectExpiresIn(body.expires_in, e);
          // Valid, so cached: the next request is served from it without calling the IdP.
          idp.resetStats();
          const again = await getToken(clientId);
          expect(again.json().access_token).toBe(body.access_token);
          expect(idp.stats().tokenRequests).toBe(0);
          await expectStoredExpiry(clientId, Date.parse(body.expires_at));
          return;
        }

        expectFailure(res, e);
        if (e.status === 'too_short') {
          // Held (it is a valid token) but only handed to a caller that accepts its short life.
          idp.resetStats();
          const short = await getToken(clientId, '?minTtl=0');
          expectStatus(short, 200);
          expect(idp.stats().tokenRequests).toBe(0);
          const expiresAt = Date.parse(short.json().expires_at);
          // Rounded down: 3 s counted from when the request was sent, never 4. The lower bound
          // gives up the two whole milliseconds the answer can lose to rounding: the replica's
          // wall reading (Date.now) is truncated to the ms while the remaining life added to it is
          // fractional (performance.now), and the Date built from the sum truncates again. Early
          // by 2 ms is the safe side; the upper bound below is the one a caller relies on.
          expect(expiresAt).toBeGreaterThanOrEqual(t0 + e.lifetime * 1000 - WALL_CLOCK_ROUNDING_MS);
          expect(expiresAt).toBeLessThanOrEqual(t1 + e.lifetime * 1000);
          expect(short.json().expires_in).toBeLessThanOrEqual(e.lifetime);
        } else {
          // Nothing cached: neither this replica's copy nor Redis.
          expect((await adminView(clientId)).hasToken).toBe(false);
          expect(await storedExpiry(clientId)).toBeUndefined();
        }

        idp.setExpiresIn(DEFAULT_JWT_LIFETIME);
        idp.resetStats();
        if (e.status === 502) {
          // Not retried hot: for 30 s the same answer comes back without calling the IdP.
          const held = await getToken(clientId);
          expectError(held, 502, 'upstream_rejected', e.message);
          expect(idp.stats().tokenRequests).toBe(0);
          await advance(REJECTION_HOLD_MS + 1000);
        }
        if (e.status === 'too_short') {
          // A held token younger than 5 s is not replaced on every request (token-vending
          // service): step past that, as a caller retrying after Retry-After would.
          await advance(MIN_REFETCH_INTERVAL_MS);
        }
        const seenBefore = new Set(seen);
        const recovered = await getToken(clientId);
        expectStatus(recovered, 200);
        expect(idp.stats().tokenRequests).toBe(1);
        expect(seenBefore.has(recovered.json().access_token)).toBe(false);
        expect(recovered.json().expires_in).toBeGreaterThan(DEFAULT_JWT_LIFETIME - 5);
        // The skew wait in advance() has a 5 s budget of its own, past Jest's default 5 s.
      },
      20_000,
    );
  });

  describe('warm: a valid token held', () => {
    it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
      const clientId = warmId(i);
      const first = await getToken(clientId);
      expectStatus(first, 200);
      const held = first.json();
      const heldExpiresAt = Date.parse(held.expires_at);

      if (c.jwtLifetime) idp.setExpiresIn(c.jwtLifetime);
      idp.setFault(c.fault);
      idp.resetStats();
      // Requests keep being served from the held token: no IdP call is needed.
      for (const query of ['', '', '?minTtl=60']) {
        const res = await getToken(clientId, query);
        expectStatus(res, 200);
        expect(res.json().access_token).toBe(held.access_token);
      }
      expect(idp.stats().tokenRequests).toBe(0);

      // A refresh forced during the fault.
      const refresh = await adminRefresh(clientId);
      idp.clearFault();
      idp.setExpiresIn(DEFAULT_JWT_LIFETIME);
      expect(idp.stats().tokenRequests).toBe(c.attempts);
      expect(refresh.headers['cache-control']).toBe('no-store');
      const e = c.expected;
      idp.resetStats();
      const after = await getToken(clientId);
      expectStatus(after, 200);
      expect(idp.stats().tokenRequests).toBe(0);
      await expectAlive(svc.url);

      if (e.status === 200) {
        // A valid new token: whichever expires later is kept (fenced write), here and in Redis.
        expectStatus(refresh, 200);
        const fresh = refresh.json();
        const freshExpiresAt = Date.parse(fresh.expiresAt);
        const keep =
          freshExpiresAt > heldExpiresAt
            ? fresh.tokenFingerprint
            : tokenFingerprint(held.access_token);
        expect(tokenFingerprint(after.json().access_token)).toBe(keep);
        await expectStoredExpiry(clientId, Math.max(freshExpiresAt, heldExpiresAt));
        if (freshExpiresAt > heldExpiresAt) expectExpiresIn(after.json().expires_in, e);
        return;
      }
      if (e.status === 'too_short') {
        // The 3 s token is valid but expires before the held one: it replaces nothing.
        expectStatus(refresh, 200);
        expect(Date.parse(refresh.json().expiresAt)).toBeLessThan(heldExpiresAt);
      } else {
        expectFailure(refresh, e);
      }
      expect(after.json().access_token).toBe(held.access_token);
      await expectStoredExpiry(clientId, heldExpiresAt);
      const view = await adminView(clientId);
      expect(view).toMatchObject({
        hasToken: true,
        tokenFingerprint: tokenFingerprint(held.access_token),
      });
    });
  });
});
