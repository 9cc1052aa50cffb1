import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  killAllReplicas,
  type Replica,
  type ServiceConfigSpec,
  sleep,
  startRedisServer,
  startService,
  type ThrowawayRedis,
  waitFor,
} from '../support';

/**
 * SIGTERM on the production entry point (README "Shutdown"): stop
 * accepting (new requests get 503 or a refused connection, never a hang), let in-flight
 * requests finish, release held refresh locks, exit 0 within the drain (DRAIN_TIMEOUT_MS,
 * 10 s, in main.ts). Real processes (`node dist/apps/token-vendor/main.js`) on a throwaway
 * redis-server, in front of the sandbox IdP made slow so a cold token request is in flight.
 */
const CLIENT_ID = 'shutdown.client';
const ENVIRONMENT = 'uat';
const SECRET = 'shutdown-secret-0001-not-a-real-one';
const CALLER_KEY = 'shutdown-caller-key-0001-aaaaaaaaaaaaaaaa';
const SLOW_IDP_MS = 1500;
/** main.ts DRAIN_TIMEOUT_MS: past it the process gives up draining and exits 1. */
const DRAIN_MS = 10_000;
const IN_FLIGHT = 5;
/** Once the last in-flight answer is out, what is left (stop the scheduler, release locks, quit Redis) is quick. */
const EXIT_AFTER_LAST_ANSWER_MS = 1500;

/** A request's outcome: its answer, or the network error it ended with; and when it ended. */
interface Outcome {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: string;
  error?: string;
  endedAt: number;
}

/** GET through `agent`, bounded by `timeoutMs` (a hang ends as error HANG, never as a stuck test). */
function get(agent: Agent, url: string, timeoutMs = 5000): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { agent, timeout: timeoutMs, headers: { Authorization: `Bearer ${CALLER_KEY}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body, endedAt: Date.now() }),
        );
        res.on('error', (e: NodeJS.ErrnoException) =>
          resolve({ error: e.code ?? e.message, endedAt: Date.now() }),
        );
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('hang'), { code: 'HANG' })));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ error: e.code ?? e.message, endedAt: Date.now() }),
    );
    req.end();
  });
}

/**
 * One raw TCP connection for HTTP/1.1 pipelining: `send` writes a request on it whenever the
 * test wants, `statuses` reads the status lines answered so far.
 */
async function rawConnection(port: number) {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (c: string) => (received += c));
  socket.on('error', () => undefined);
  return {
    send(path: string): void {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CALLER_KEY}\r\n\r\n`,
      );
    },
    statuses: (): number[] =>
      [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])),
    text: (): string => received,
    destroy: () => socket.destroy(),
  };
}

/** Whether a new TCP connection to `port` is refused (its listener closed); one accepted is closed at once. */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('shutdown on SIGTERM (real processes)', () => {
  let idp: RunningSandbox;
  let redis: ThrowawayRedis;
  let redisClient: Redis;
  let config: ServiceConfigSpec;
  const agents: Agent[] = [];
  /** The raw answer to the request pipelined after SIGTERM in the first test (read by the second). */
  let drainAnswer = '';

  const newAgent = (keepAlive: boolean): Agent => {
    const agent = new Agent({ keepAlive });
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    [idp, redis] = await Promise.all([
      startIdentitySandbox({
        clients: [{ clientId: CLIENT_ID, secret: SECRET, scopes: ['deals-read'] }],
        expiresIn: 1200,
      }),
      startRedisServer(),
    ]);
    redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    config = {
      environments: { [ENVIRONMENT]: { tokenUrl: idp.tokenUrl, timeoutMs: 3000 } },
      clients: [{ clientId: CLIENT_ID, environment: ENVIRONMENT, secret: SECRET }],
      callers: [{ name: 'shutdown-caller', keys: [CALLER_KEY], clients: ['*'] }],
    };
  });

  afterEach(async () => {
    for (const agent of agents.splice(0)) agent.destroy();
    await killAllReplicas();
  });

  afterAll(async () => {
    redisClient?.disconnect();
    await redis?.stop();
    await idp?.close();
  });

  beforeEach(() => {
    idp.resetStats();
    idp.clearFault();
  });

  /** A replica on the throwaway Redis, with a key prefix of its own. */
  async function startOne(): Promise<{ replica: Replica; lockKey: string; tokenKey: string }> {
    const prefix = `tv-shutdown-${randomUUID()}:`;
    const replica = await startService({
      run: 'process',
      ...config,
      redis: redis.url,
      keyPrefix: prefix,
    });
    return {
      replica,
      lockKey: `${prefix}{${ENVIRONMENT}/${CLIENT_ID}}:lock`,
      tokenKey: `${prefix}{${ENVIRONMENT}/${CLIENT_ID}}:token`,
    };
  }

  /** Waits for the exit, bounded well past the drain; resolves with code, signal and when. */
  async function exitOf(
    replica: Replica,
  ): Promise<{ code: number | null | 'still running'; signal: string | null; at: number }> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      replica.exited,
      new Promise<{ code: 'still running'; signal: null }>((resolve) => {
        timer = setTimeout(() => resolve({ code: 'still running', signal: null }), DRAIN_MS + 3000);
      }),
    ]);
    clearTimeout(timer);
    return { ...result, at: Date.now() };
  }

  /**
   * Runs `start` (which sends token requests) while the IdP is slow, then waits until the
   * replica's one IdP request is held there, under the Redis lock. Returns the lock's owner.
   */
  async function coldFetchInFlight(
    lockKey: string,
    tokenKey: string,
    start: () => void,
  ): Promise<string> {
    start();
    const owner = await waitFor('the refresh lock in Redis', () => redisClient.get(lockKey), 3000);
    await waitFor(
      'the IdP to hold the token request',
      () => idp.requests().some((r) => r.status === undefined),
      3000,
    );
    expect(await redisClient.get(tokenKey)).toBeNull(); // nothing held yet: a cold request
    await sleep(100); // every request has reached the service
    return owner;
  }

  it('finishes every in-flight request with 200, turns new ones away, releases the lock and exits 0', async () => {
    // Slow from the start: the replica's first token (its warm-up or the first request,
    // whichever comes first) is one 1.5 s IdP request made under the Redis refresh lock.
    idp.setFault({ mode: 'slow', delayMs: SLOW_IDP_MS });
    const { replica, lockKey, tokenKey } = await startOne();
    const tokenUrl = `${replica.url}/tokens/${CLIENT_ID}`;

    // An idle kept-alive connection (what a load balancer would reuse) and a raw connection
    // that will pipeline a request behind an in-flight one.
    const keepAlive = newAgent(true);
    expect((await get(keepAlive, `${replica.url}/health/live`)).status).toBe(200);
    const pipelined = await rawConnection(replica.port);
    const probed = await rawConnection(replica.port);

    const oneShot = newAgent(false);
    let inFlight: Promise<Outcome>[] = [];
    const owner = await coldFetchInFlight(lockKey, tokenKey, () => {
      inFlight = Array.from({ length: IN_FLIGHT }, () => get(oneShot, tokenUrl));
      pipelined.send(`/tokens/${CLIENT_ID}`);
      probed.send(`/tokens/${CLIENT_ID}`);
    });

    const sigtermAt = Date.now();
    replica.kill('SIGTERM');
    await waitFor(
      'the signal to be handled: the listener closed (a new connection refused)',
      () => connectionRefused(replica.port),
      1000,
      10,
    );

    // Arriving after SIGTERM while the in-flight requests still wait on the IdP: on a new
    // connection, on the idle kept-alive one, and pipelined behind an in-flight request.
    pipelined.send(`/tokens/${CLIENT_ID}`);
    probed.send('/health/ready'); // a probe turned away: answered 503, not audited
    const afterTerm = await Promise.all([
      get(oneShot, tokenUrl, 3000),
      get(keepAlive, tokenUrl, 3000),
      get(oneShot, `${replica.url}/health/ready`, 3000),
    ]);

    const answers = await Promise.all(inFlight);
    const exit = await exitOf(replica);
    // Read right after the exit, before anything else can touch Redis.
    const lockAfterExit = await redisClient.get(lockKey);
    const secondReplicaTakesLock = await redisClient.set(
      lockKey,
      `second-replica-${randomUUID()}`,
      'PX',
      10_000,
      'NX',
    );
    await redisClient.del(lockKey); // ours, on our own throwaway Redis
    await waitFor('the pipelined answers', () => pipelined.statuses().length === 2, 1000);
    await waitFor('the probe behind a token request', () => probed.statuses().length === 2, 1000);
    expect(probed.statuses()).toEqual([200, 503]);
    probed.destroy();
    drainAnswer = pipelined.text().slice(pipelined.text().lastIndexOf('HTTP/1.1 '));
    pipelined.destroy();

    // Every in-flight request completed with the one token fetched, after SIGTERM.
    expect(answers.map((a) => a.status)).toEqual(Array(IN_FLIGHT).fill(200));
    for (const a of answers) expect(a.endedAt).toBeGreaterThan(sigtermAt);
    expect(new Set(answers.map((a) => JSON.parse(a.body ?? '{}').access_token)).size).toBe(1);
    expect(idp.stats().tokenRequests).toBe(1);

    // New requests were turned away at once (long before the in-flight ones were answered):
    // a refused connection, or on an open connection a 503 that closes it.
    expect(afterTerm.map((o) => o.error ?? o.status)).toEqual([
      'ECONNREFUSED',
      // The idle kept-alive connection was closed by the server at SIGTERM, so the agent
      // opened a new one, refused (a reset if the close crossed the request on the wire).
      expect.stringMatching(/^(ECONNREFUSED|ECONNRESET)$/),
      'ECONNREFUSED',
    ]);
    for (const o of afterTerm) expect(o.endedAt - sigtermAt).toBeLessThan(SLOW_IDP_MS);
    expect(pipelined.statuses()).toEqual([200, 503]);
    expect(pipelined.text()).toMatch(/\r\nconnection: close\r\n/i);

    // Exit 0, as soon as the in-flight requests were answered; the lock released.
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    const lastAnswerAt = Math.max(...answers.map((a) => a.endedAt));
    expect(exit.at - lastAnswerAt).toBeLessThan(EXIT_AFTER_LAST_ANSWER_MS);
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_MS);
    expect(owner).toEqual(expect.any(String));
    expect(lockAfterExit).toBeNull();
    expect(secondReplicaTakesLock).toBe('OK');
    // The fetched token was stored before the process went away.
    expect(await redisClient.get(tokenKey)).not.toBeNull();

    const messages = replica.entries().map((e) => e.msg);
    expect(messages).toContain('shutting down: draining in-flight requests');
    expect(messages).toContain('shut down cleanly');
    expect(messages).not.toContain('drain timed out; exiting');
    // The one request turned away on an open connection is audited with why: a token request
    // writes no access line, and the guard never saw it.
    expect(replica.entries().filter((e) => e.audit === true && e.outcome !== 'served')).toEqual([
      expect.objectContaining({
        msg: 'request refused',
        caller: null,
        path: `/tokens/${CLIENT_ID}`,
        source: '127.0.0.1',
        outcome: 'shutting_down',
      }),
    ]);
    const token = JSON.parse(answers[0].body ?? '{}').access_token as string;
    for (const line of replica.logs) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(CALLER_KEY);
      expect(line).not.toContain(token);
    }
  }, 20_000);

  it('answers a request arriving during the drain with a 503 in the error shape (no-store, {error, message})', () => {
    // README "API": Cache-Control no-store and Pragma no-cache "on every answer, errors
    // included"; errors are `{"error": "<code>", "message": "<text>"}`.
    expect(drainAnswer).toMatch(/^HTTP\/1\.1 503 /);
    const [head, body] = drainAnswer.split('\r\n\r\n');
    expect(head).toMatch(/\r\ncache-control: no-store\r\n/i);
    expect(head).toMatch(/\r\npragma: no-cache\r\n/i);
    // A code of the OpenAPI document's ErrorBodyDto enum, like every other error.
    expect(JSON.parse(body)).toEqual({
      error: 'shutting_down',
      message: 'This replica is shutting down; retry and another will answer.',
    });
  });

  it('exits 0 promptly when callers keep their connections alive (a pooled HTTP client)', async () => {
    // Service-to-service clients pool connections and keep them open while idle (Go 90 s,
    // Envoy 1 h, ...). An in-flight request on such a connection is answered; the connection
    // then sits idle — it must not hold the process until the drain times out.
    idp.setFault({ mode: 'slow', delayMs: SLOW_IDP_MS });
    const { replica, lockKey, tokenKey } = await startOne();
    const pool = newAgent(true); // no idle timeout of its own, like most pools
    let inFlight: Promise<Outcome>[] = [];
    await coldFetchInFlight(lockKey, tokenKey, () => {
      inFlight = Array.from({ length: 3 }, () => get(pool, `${replica.url}/tokens/${CLIENT_ID}`));
    });

    const sigtermAt = Date.now();
    replica.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    const exit = await exitOf(replica);

    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const lastAnswerAt = Math.max(...answers.map((a) => a.endedAt));
    expect(exit.at - lastAnswerAt).toBeLessThan(EXIT_AFTER_LAST_ANSWER_MS);
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_MS);
    expect(replica.entries().map((e) => e.msg)).not.toContain('drain timed out; exiting');
    expect(await redisClient.get(lockKey)).toBeNull();
  }, 20_000);

  it('releases a lock only its scheduler holds (no request waiting) and exits 0 without waiting for the IdP', async () => {
    // Slower than the drain: the warm-up fetch cannot finish before the exit.
    idp.setFault({ mode: 'slow', delayMs: DRAIN_MS });
    const { replica, lockKey } = await startOne();
    // The warm-up (within 2 s of start) takes the lock; nobody asked for a token.
    await waitFor('the warm-up to take the refresh lock', () => redisClient.get(lockKey), 4000);

    const sigtermAt = Date.now();
    replica.kill('SIGTERM');
    const exit = await exitOf(replica);
    const lockAfterExit = await redisClient.get(lockKey);
    const secondReplicaTakesLock = await redisClient.set(lockKey, 'second', 'PX', 10_000, 'NX');
    await redisClient.del(lockKey);

    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    expect(exit.at - sigtermAt).toBeLessThan(EXIT_AFTER_LAST_ANSWER_MS);
    expect(lockAfterExit).toBeNull();
    expect(secondReplicaTakesLock).toBe('OK');
  }, 20_000);
});
