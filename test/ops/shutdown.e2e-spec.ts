import { Agent, request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { httpRequest, type SimpleResponse } from '../support/http';
import { startRedisServer, type ThrowawayRedis } from '../support/redis-server';
import {
  killAllReplicas,
  startReplica,
  writeServiceConfig,
  type Replica,
  type ServiceConfigFiles,
} from '../support/replica';
import { testEncryptionKeys } from '../support/test-app';

/**
 * SIGTERM on the production entry point (contract §7 "Shutdown", README "Shutdown"): stop
 * accepting (new requests get 503 or a refused connection, never a hang), let in-flight
 * requests finish, release held refresh locks, exit 0 — within the drain (10 s,
 * DRAIN_TIMEOUT_MS in main.ts). Real processes on a throwaway redis-server.
 */
const CLIENT_ID = 'shutdown.client';
const ENVIRONMENT = 'uat';
const SECRET = 'shutdown-secret-0001-not-a-real-one';
const CALLER_KEY = 'shutdown-caller-key-0001-aaaaaaaaaaaaaaaa';
const SLOW_IDP_MS = 1500;
/** main.ts DRAIN_TIMEOUT_MS: past it the process exits 1. */
const GRACE_MS = 10_000;
const IN_FLIGHT = 5;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A request's outcome: its answer, or the network error it ended with; and when. */
interface Outcome {
  status?: number;
  body?: string;
  error?: string;
  endedAt: number;
}

function settle(p: Promise<SimpleResponse>): Promise<Outcome> {
  return p.then(
    (res) => ({ status: res.status, body: res.text, endedAt: Date.now() }),
    (e: NodeJS.ErrnoException) => ({ error: e.code ?? e.message, endedAt: Date.now() }),
  );
}

/** GET on a given agent (so a test can reuse a kept-alive connection), bounded by `timeoutMs`. */
function getWith(agent: Agent, url: string, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(url, { agent, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body, endedAt: Date.now() }));
      res.on('error', (e: NodeJS.ErrnoException) =>
        resolve({ error: e.code ?? e.message, endedAt: Date.now() }),
      );
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('hang'), { code: 'HANG' })));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ error: e.code ?? e.message, endedAt: Date.now() }),
    );
    req.end();
  });
}

describe('shutdown on SIGTERM (real processes)', () => {
  let idp: RunningSandbox;
  let redis: ThrowawayRedis;
  let redisClient: Redis;
  let files: ServiceConfigFiles;

  beforeAll(async () => {
    [idp, redis] = await Promise.all([
      startIdentitySandbox({
        clients: [{ clientId: CLIENT_ID, secret: SECRET, scopes: ['deals-read'] }],
        expiresIn: 1200,
      }),
      startRedisServer(),
    ]);
    redisClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    files = writeServiceConfig({
      environments: { [ENVIRONMENT]: { tokenUrl: idp.tokenUrl, timeoutMs: 3000 } },
      clients: [{ clientId: CLIENT_ID, environment: ENVIRONMENT, secret: SECRET }],
      callers: [{ name: 'shutdown-caller', keys: [CALLER_KEY], clients: ['*'] }],
    });
  });

  afterAll(async () => {
    await killAllReplicas();
    redisClient?.disconnect();
    await redis?.stop();
    await idp?.close();
    files?.remove();
  });

  beforeEach(() => {
    idp.resetStats();
    idp.clearFault();
  });

  /** A replica on the throwaway Redis with a key prefix of its own. */
  async function replicaWithPrefix(): Promise<{ replica: Replica; lockKey: string; tokenKey: string }> {
    const prefix = `tv-shutdown-${randomUUID()}:`;
    const replica = await startReplica({
      env: {
        TOKEN_VENDOR_CONFIG: files.configPath,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: prefix,
        TOKEN_VENDOR_ENCRYPTION_KEYS: testEncryptionKeys(),
        LOG_LEVEL: 'debug',
      },
    });
    return {
      replica,
      lockKey: `${prefix}{${ENVIRONMENT}/${CLIENT_ID}}:lock`,
      tokenKey: `${prefix}{${ENVIRONMENT}/${CLIENT_ID}}:token`,
    };
  }

  it(
    'finishes every in-flight request with 200, refuses new ones, releases the lock and exits 0',
    async () => {
      // Slow from the start: the replica's first token (its warm-up or the first request,
      // whichever comes first) is a 1.5 s IdP request made under the Redis refresh lock.
      const T0 = Date.now();
      idp.setFault({ mode: 'slow', delayMs: SLOW_IDP_MS });
      const { replica, lockKey, tokenKey } = await replicaWithPrefix();
      const tokenUrl = `${replica.url}/tokens/${CLIENT_ID}`;
      console.log('ready after', Date.now() - T0);
      const auth = { headers: { Authorization: `Bearer ${CALLER_KEY}` } };

      // A kept-alive connection, idle when SIGTERM comes: what a load balancer would reuse.
      const keepAlive = new Agent({ keepAlive: true, maxSockets: 1 });
      const warmConnection = await getWith(keepAlive, `${replica.url}/health/live`, 2000);
      expect(warmConnection.status).toBe(200);

      const pool = new Agent({ keepAlive: true });
      const inFlight = Array.from({ length: IN_FLIGHT }, () =>
        settle(new Promise<SimpleResponse>((resolve, reject) => { const r = request(tokenUrl, { agent: pool, headers: auth.headers }, (res) => { let b=''; res.on('data', (c) => (b += c)); res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: b, json: () => JSON.parse(b) })); }); r.on('error', reject); r.end(); })),
      );
      // The cold fetch is running: its lock is in Redis and the IdP holds the request.
      const owner = await waitFor('the refresh lock', () => redisClient.get(lockKey), 3000);
      await waitFor(
        'the IdP to hold the token request',
        () => idp.requests().some((r) => r.status === undefined),
        3000,
      );
      expect(await redisClient.get(tokenKey)).toBeNull();
      await sleep(100); // every request has reached the service

      const sigtermAt = Date.now();
      replica.kill('SIGTERM');
      await sleep(50); // the signal is handled: the server stops accepting

      // Requests after SIGTERM, while the in-flight ones still wait on the IdP: a new
      // connection and a reused kept-alive one. Each ends fast; none hangs.
      const afterTerm = await Promise.all([
        settle(httpRequest(tokenUrl, auth)),
        getWith(keepAlive, tokenUrl, 3000),
        settle(httpRequest(`${replica.url}/health/ready`)),
      ]);

      const answers = await Promise.all(inFlight);
      const exit = await Promise.race([
        replica.exited,
        sleep(GRACE_MS + 2000).then(() => ({ code: 'no exit', signal: null })),
      ]);
      const exitedAfterMs = Date.now() - sigtermAt;
      // Right after exit, before anything else can touch Redis.
      const lockAfterExit = await redisClient.get(lockKey);
      const secondReplicaTakesLock = await redisClient.set(
        lockKey,
        `second-replica-${randomUUID()}`,
        'PX',
        10_000,
        'NX',
      );
      keepAlive.destroy();
      console.log({ afterTerm, exitedAfterMs, ends: answers.map((a) => a.endedAt - sigtermAt), t0: Date.now() - T0 });

      // Every in-flight request completed with the token, after SIGTERM (they were in flight).
      expect(answers.map((a) => a.status)).toEqual(Array(IN_FLIGHT).fill(200));
      for (const a of answers) expect(a.endedAt).toBeGreaterThan(sigtermAt);
      const tokens = new Set(answers.map((a) => JSON.parse(a.body ?? '{}').access_token));
      expect(tokens.size).toBe(1);
      expect(idp.stats().tokenRequests).toBe(1);

      // New requests were turned away at once: 503 or a refused connection.
      for (const outcome of afterTerm) {
        expect(outcome.endedAt - sigtermAt).toBeLessThan(SLOW_IDP_MS);
        if (outcome.status !== undefined) {
          expect(outcome.status).toBe(503);
        } else {
          expect(['ECONNREFUSED', 'ECONNRESET']).toContain(outcome.error);
        }
      }

      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAfterMs).toBeLessThan(GRACE_MS);
      expect(owner).toEqual(expect.any(String));
      expect(lockAfterExit).toBeNull();
      expect(secondReplicaTakesLock).toBe('OK');
      // The fetched token was stored before the process went away.
      expect(await redisClient.get(tokenKey)).not.toBeNull();

      const messages = replica.entries().map((e) => e.msg);
      expect(messages).toContain('shutting down: draining in-flight requests');
      expect(messages).toContain('shut down cleanly');
      await redisClient.del(lockKey); // our own key, on our own throwaway Redis
    },
    20_000,
  );

  it(
    'releases a lock its scheduler holds (no request waiting) and exits 0 without waiting for the IdP',
    async () => {
      // Slower than the drain allows: the warm-up fetch cannot finish before the exit.
      idp.setFault({ mode: 'slow', delayMs: 8000 });
      const { replica, lockKey } = await replicaWithPrefix();
      // The warm-up (within 2 s of start) takes the lock; nobody asked for a token.
      await waitFor('the warm-up to take the refresh lock', () => redisClient.get(lockKey), 4000);

      const sigtermAt = Date.now();
      replica.kill('SIGTERM');
      const exit = await Promise.race([
        replica.exited,
        sleep(GRACE_MS + 2000).then(() => ({ code: 'no exit', signal: null })),
      ]);
      const exitedAfterMs = Date.now() - sigtermAt;
      const lockAfterExit = await redisClient.get(lockKey);

      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAfterMs).toBeLessThan(3000);
      expect(lockAfterExit).toBeNull();
      const secondReplicaTakesLock = await redisClient.set(lockKey, 'second', 'PX', 10_000, 'NX');
      expect(secondReplicaTakesLock).toBe('OK');
      await redisClient.del(lockKey);
    },
    20_000,
  );
});
