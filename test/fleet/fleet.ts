import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { lockTtlMs } from '@app/tokens';
import { DEFAULT_MAX_ATTEMPTS, RETRY_POLICY } from '@app/upstream';
import {
  CALLER_KEY,
  type Fleet,
  type FleetOptions,
  httpRequest,
  jsonOrRaw,
  killAllReplicas,
  type Replica,
  sandboxClients,
  sleep,
  startRedisServer,
  startService,
  type TapRecord,
  type ThrowawayRedis,
  type TokenAnswer,
  waitFor,
} from '../support';

/**
 * Tools of the fleet suites (test/fleet, test/chaos): their one setup (useFleet), caller load,
 * watches of the stored token, and reading what the replicas did.
 */

/**
 * README "Fleet-wide invalidation" (and "The chaos run"): an invalidated token is served by no
 * replica more than this long after its revocation.
 */
export const PROPAGATION_MS = 1_000;

/** The refresh lock's life for an environment whose IdP timeout is `timeoutMs` (the library's own derivation). */
export function lockTtlMsFor(timeoutMs: number): number {
  return lockTtlMs({ timeoutMs });
}

export interface FleetSuiteOptions extends Omit<
  FleetOptions,
  'run' | 'sandbox' | 'redis' | 'clientIds' | 'timeoutMs'
> {
  /** The IdP timeout of the fleet's environment (default 500 ms: a lock TTL of 3.5 s). */
  timeoutMs?: number;
  /** The sandbox IdP's token life (`expires_in`, seconds). */
  expiresIn: number;
  /** The scopes the sandbox grants every client (default `deals-read`). */
  sandboxScopes?: string[];
  /** The fleet runs on a throwaway redis-server of its own (outage suites), never the shared one. */
  ownRedis?: boolean;
  /** Before the tests, wait until every client's warm-up token is in Redis. */
  warm?: boolean;
}

/** What useFleet started: set before the first test runs (undefined while describe blocks are read). */
export interface FleetSuite {
  idp: RunningSandbox;
  fleet: Fleet;
  /** With `ownRedis` only. */
  redis?: ThrowawayRedis;
}

/**
 * The fleet suites' one setup, called inside their describe: a fleet serving `clientIds`. Before
 * all tests, the sandbox IdP,
 * a throwaway Redis when asked, the fleet (startService `run: 'fleet'`) and its warm-up; after
 * each test, no IdP fault, no held Redis link, no paused replica; after all, everything stopped.
 * Returns what it started (filled in before the first test); `started`, when given, also
 * receives it once it is up.
 */
export function useFleet(
  clientIds: string[],
  options: FleetSuiteOptions,
  started?: (suite: FleetSuite) => void,
): FleetSuite {
  const { expiresIn, sandboxScopes, ownRedis, warm, ...fleetOptions } = options;
  const suite = {} as Partial<FleetSuite>;

  beforeAll(async () => {
    suite.idp = await startIdentitySandbox({
      clients: sandboxClients(clientIds).map((c) =>
        sandboxScopes ? { ...c, scopes: sandboxScopes } : c,
      ),
      expiresIn,
    });
    if (ownRedis) suite.redis = await startRedisServer();
    const fleet = await startService({
      timeoutMs: 500,
      ...fleetOptions,
      run: 'fleet',
      clientIds,
      sandbox: suite.idp,
      redis: suite.redis?.url,
    });
    suite.fleet = fleet;
    if (warm)
      await waitFor(
        'the warm-up tokens',
        async () => (await Promise.all(clientIds.map((c) => fleet.storedExpiry(c)))).every(Boolean),
        15_000,
      );
    started?.(suite as FleetSuite);
  }, 60_000);

  afterEach(() => {
    suite.idp?.clearFault();
    for (const link of suite.fleet?.redisLinks ?? []) link.release();
    for (const r of suite.fleet?.replicas ?? []) r.kill('SIGCONT');
  });

  afterAll(async () => {
    await suite.fleet?.stop(); // SIGCONT then SIGKILL for whatever is left
    await killAllReplicas();
    await suite.redis?.stop();
    await suite.idp?.close();
  });
  return suite as FleetSuite;
}

/** Resolves with the next token request a replica sends for `clientId` (taps only), and runs `then` synchronously on it. */
export function nextTapRequest(
  fleet: Fleet,
  clientId: string,
  timeoutMs: number,
  filter: (record: TapRecord) => boolean = () => true,
  then: (record: TapRecord) => void = () => undefined,
): Promise<TapRecord> {
  return new Promise((resolve, reject) => {
    const onRequest = (record: TapRecord): void => {
      if (record.clientId !== clientId || !filter(record)) return;
      clearTimeout(timer);
      fleet.tapEvents.off('request', onRequest);
      then(record);
      resolve(record);
    };
    const timer = setTimeout(() => {
      fleet.tapEvents.off('request', onRequest);
      reject(new Error(`no token request for ${clientId} within ${timeoutMs} ms`));
    }, timeoutMs);
    fleet.tapEvents.on('request', onRequest);
  });
}

/** The commands in a chunk of RESP client traffic (arrays of bulk strings), as strings. */
export function parseRespCommands(bytes: Buffer): string[][] {
  const text = bytes.toString('latin1');
  const commands: string[][] = [];
  let i = 0;
  const line = (): string => {
    const end = text.indexOf('\r\n', i);
    if (end < 0) throw new RangeError('incomplete');
    const value = text.slice(i, end);
    i = end + 2;
    return value;
  };
  try {
    while (i < text.length) {
      const header = line();
      if (!header.startsWith('*')) break;
      const args: string[] = [];
      for (let n = Number(header.slice(1)); n > 0; n--) {
        const length = Number(line().slice(1));
        args.push(text.slice(i, i + length));
        i += length + 2;
      }
      commands.push(args);
    }
  } catch {
    // a partial command at the end: ignored
  }
  return commands;
}

/**
 * The expiry (Redis ms) a fenced token write stamps when it reaches Redis late: its send time
 * in Redis's time plus the remaining life it carries (README "Which clock decides what");
 * undefined for any other command. `args` as parseRespCommands gives them (EVALSHA sha 2 token
 * revoked value sha256 ttl unreadable tie sentAt).
 */
export function fencedWriteExpiryOf(args: string[], tokenKey: string): number | undefined {
  const i = args.indexOf(tokenKey);
  if (i < 0 || args[i - 1] !== '2' || !args[i + 2]?.startsWith('|')) return undefined;
  const ttl = Number(args[i + 4]);
  const sentAt = Number(args[i + 7]);
  return Number.isSafeInteger(ttl) && Number.isSafeInteger(sentAt) ? sentAt + ttl : undefined;
}

/** A POST to a replica with the fleet's caller key; the parsed JSON answer. */
export async function postJson(
  replica: Replica,
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<{ status: number; body: Record<string, unknown>; at: number }> {
  const at = Date.now();
  const res = await httpRequest(`${replica.url}${path}`, {
    method: 'POST',
    key: CALLER_KEY,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    timeoutMs,
  });
  return { status: res.status, body: jsonOrRaw(res.text), at };
}

/** `count` concurrent requests spread round-robin over `replicas`; resolves when all answered. */
export function burst(
  fleet: Fleet,
  replicas: Replica[],
  clientId: string,
  count: number,
  query = '',
): Promise<TokenAnswer[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      fleet.getToken(replicas[i % replicas.length], clientId, query),
    ),
  );
}

/**
 * Asks `replicas` for the client's token in a loop (each replica one request at a time) until
 * stop(); returns every answer in the order the requests were sent (the invalidation suites).
 */
export function pollToken(
  fleet: Fleet,
  replicas: Replica[],
  clientId: string,
): { stop(): Promise<TokenAnswer[]> } {
  let running = true;
  const answers: TokenAnswer[] = [];
  const loops = replicas.map(async (r) => {
    while (running) {
      answers.push(await fleet.getToken(r, clientId, '', 5_000));
      await sleep(10);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return answers.sort((a, b) => a.at - b.at);
    },
  };
}

/** Answers to requests sent at or after `from` that carried `token`. */
export const servedAfter = (answers: TokenAnswer[], token: string, from: number): TokenAnswer[] =>
  answers.filter((a) => a.at >= from && a.body.access_token === token);

// ---------------------------------------------------------------------------------------------
// Steady load.

/** A caller's answer under load, with when it arrived. */
export interface LoadAnswer extends TokenAnswer {
  answeredAt: number;
}

export interface Load {
  readonly results: LoadAnswer[];
  /** Stops sending and resolves with every answer, by sending time, once the last one is in. */
  stop(): Promise<LoadAnswer[]>;
}

/**
 * Sends `ratePerSecond` requests per second, round-robin over `targets()` (called for every
 * request, so a test can take a replica out of the rotation), without waiting for answers.
 */
export function startLoad(
  fleet: Fleet,
  targets: () => Replica[],
  clientId: string,
  ratePerSecond: number,
  timeoutMs?: number,
): Load {
  const results: LoadAnswer[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(
    () => {
      const list = targets();
      if (list.length === 0) return;
      const replica = list[n++ % list.length];
      const p = fleet.getToken(replica, clientId, '', timeoutMs).then((r) => {
        results.push({ ...r, answeredAt: Date.now() });
        pending.delete(p);
      });
      pending.add(p);
    },
    Math.round(1000 / ratePerSecond),
  );
  return {
    results,
    async stop() {
      clearInterval(timer);
      while (pending.size > 0) await Promise.all([...pending]);
      return results.sort((a, b) => a.at - b.at);
    },
  };
}

/**
 * The 1-s windows from `from` (full windows until `to`) in which a replica answered no request
 * sent in it, as `<replica>@+<ms from start>`: "every replica served throughout" without a total
 * count, which measures the load's timer more than the fleet (on a busy CI machine a 50-ms
 * interval drifts). Whether those answers were 200s is failuresOf's question.
 */
export function secondsWithoutAnswer(
  results: TokenAnswer[],
  replicas: Replica[],
  from: number,
  to: number,
): string[] {
  const windows = Array.from({ length: Math.floor((to - from) / 1000) }, (_, i) => from + i * 1000);
  return replicas.flatMap((r) =>
    windows
      .filter(
        (start) =>
          !results.some((a) => a.replica === r.name && a.at >= start && a.at < start + 1000),
      )
      .map((start) => `${r.name}@+${start - from}ms`),
  );
}

/** Answers that are not a 200 carrying a token with at least `minTtlSeconds` left. */
export function failuresOf(results: TokenAnswer[], minTtlSeconds: number): TokenAnswer[] {
  return results.filter(
    (r) =>
      r.status !== 200 ||
      typeof r.body.access_token !== 'string' ||
      typeof r.body.expires_in !== 'number' ||
      r.body.expires_in < minTtlSeconds,
  );
}

/** A compact description of answers for failure messages. */
export function summarize(results: TokenAnswer[], max = 5): string {
  return JSON.stringify(
    results.slice(0, max).map((r) => ({
      replica: r.replica,
      at: new Date(r.at).toISOString(),
      status: r.status,
      error: r.error ?? r.body.error,
      message: r.body.message,
      expires_in: r.body.expires_in,
    })),
  );
}

// ---------------------------------------------------------------------------------------------
// Watching the stored token.

export interface ExpirySample {
  at: number;
  expiresAt?: number;
}

export interface ExpiryWatcher {
  readonly samples: ExpirySample[];
  /** The distinct stored expiries in the order they were seen. */
  distinct(): number[];
  /** Samples whose expiry is earlier than an expiry seen before them (must stay empty). */
  regressions(): { at: number; expiresAt: number; previous: number }[];
  /** Polls that failed (Redis down). */
  readonly errors: number;
  stop(): Promise<void>;
}

/** Polls the token key's clear expiry prefix every `everyMs`. */
export function watchStoredExpiry(fleet: Fleet, clientId: string, everyMs = 20): ExpiryWatcher {
  const samples: ExpirySample[] = [];
  let errors = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        samples.push({ at: Date.now(), expiresAt: await fleet.storedExpiry(clientId) });
      } catch {
        errors++;
      }
      await sleep(everyMs);
    }
  })();
  return {
    samples,
    get errors() {
      return errors;
    },
    distinct() {
      const out: number[] = [];
      for (const s of samples)
        if (s.expiresAt !== undefined && out.at(-1) !== s.expiresAt) out.push(s.expiresAt);
      return out;
    },
    regressions() {
      const out: { at: number; expiresAt: number; previous: number }[] = [];
      let max = 0;
      for (const s of samples) {
        if (s.expiresAt === undefined) continue;
        if (s.expiresAt < max) out.push({ at: s.at, expiresAt: s.expiresAt, previous: max });
        max = Math.max(max, s.expiresAt);
      }
      return out;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** `token obtained` log lines of a replica (written by the replica that fetched). */
export function obtainedLines(
  replica: Replica,
  clientId: string,
): { time: number; expiresAt: number }[] {
  return replica
    .entries()
    .filter((e) => e.msg === 'token obtained' && e.clientId === clientId)
    .map((e) => ({ time: Date.parse(String(e.time)), expiresAt: Date.parse(String(e.expiresAt)) }));
}

/**
 * The replicas' log lines and the taps' records since `since`, on stderr: with FLEET_DEBUG set,
 * or always when `always` (a failing test dumps what led to it, so a flaky failure in CI can
 * be read afterwards).
 */
export function debugDump(
  fleet: Fleet,
  clientId: string,
  since: number,
  label = '',
  always = false,
): void {
  if (!always && !process.env.FLEET_DEBUG) return;
  const lines: string[] = [`=== ${label} since ${new Date(since).toISOString()}`];
  for (const r of fleet.replicas) {
    for (const e of r.entries()) {
      const at = Date.parse(String(e.time));
      if (
        at < since ||
        e.audit ||
        e.req ||
        e.res ||
        /^(InstanceLoader|RouterExplorer|RoutesResolver|NestFactory|NestApplication)$/.test(
          String(e.context),
        )
      )
        continue;
      lines.push(
        `${String(e.time)} ${r.name} ${String(e.context)} ${String(e.msg)} ${JSON.stringify({ ...e, time: undefined, msg: undefined, context: undefined, service: undefined, level: undefined, pid: undefined, hostname: undefined })}`,
      );
    }
  }
  for (const t of fleet.taps.flatMap((tap) => tap.records)) {
    if (t.at >= since && t.clientId === clientId)
      lines.push(
        `${new Date(t.at).toISOString()} TAP ${JSON.stringify({ ...t, endedAt: t.endedAt && new Date(t.endedAt).toISOString() })}`,
      );
  }
  process.stderr.write(`${lines.sort().join('\n')}\n`);
}

/** With FLEET_DEBUG set: writes a measurement to stderr (for tuning bounds; silent otherwise). */
export function note(label: string, values: Record<string, unknown>): void {
  if (process.env.FLEET_DEBUG) process.stderr.write(`[fleet] ${label} ${JSON.stringify(values)}\n`);
}

/**
 * Attempts the replicas' OAuth client retried since `since` (and up to `until`) for `clientId`, by
 * cause. A retry is another IdP request of the same fetch (same flight), e.g. after an attempt
 * timed out because the test process, which hosts the sandbox IdP, was too busy sending a burst
 * to answer in time.
 */
export function retriedAttempts(
  replicas: Replica[],
  clientId: string,
  since: number,
  until = Infinity,
): Record<string, number> {
  const causes: Record<string, number> = {};
  for (const r of replicas) {
    for (const e of r.entries()) {
      if (e.msg !== 'Token request failed; retrying' || e.clientId !== clientId) continue;
      const at = Date.parse(String(e.time));
      if (at < since || at > until) continue;
      const cause = String(e.cause);
      causes[cause] = (causes[cause] ?? 0) + 1;
    }
  }
  return causes;
}

/**
 * Waits for a settled instant of the fleet's IdP traffic and calls `read` synchronously at it,
 * so the counts it reads agree with each other: no token request arrived at the sandbox IdP, nor
 * passed a tap, for longer than an attempt can take before the retry that follows it is sent
 * (the IdP timeout, plus the longest backoff before a last attempt, RETRY_POLICY, plus 200 ms
 * of scheduling), and every tap record has ended (its request reached the IdP and was answered).
 * Counts read at two such instants hold whole fetches: each retried attempt with the retry line
 * that caused it (retriedAttempts up to `at`), each tap record with the IdP request it forwarded.
 */
export async function atSettledInstant<T>(
  suite: FleetSuite,
  idpTimeoutMs: number,
  read: () => T,
): Promise<{ at: number; value: T }> {
  const quietMs =
    idpTimeoutMs + RETRY_POLICY.backoff.baseMs * 2 ** (DEFAULT_MAX_ATTEMPTS - 2) + 200;
  return waitFor(
    `no IdP request for ${quietMs} ms and every tap record ended`,
    () => {
      const now = Date.now();
      const taps = suite.fleet.taps.flatMap((t) => t.records);
      const latest = Math.max(
        0,
        ...suite.idp.requests().map((r) => r.at),
        ...taps.map((t) => t.at),
      );
      if (now - latest < quietMs || taps.some((t) => t.endedAt === undefined)) return undefined;
      return { at: now, value: read() };
    },
    15_000,
    10,
  );
}
