import { EventEmitter } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RunningSandbox, SandboxClient } from '@app/identity-sandbox';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  killAllReplicas,
  runningReplicas,
  startReplica,
  writeServiceConfig,
  type Replica,
  type ServiceConfigFiles,
} from '../support/replica';
import { requiredTestRedisUrl, testEncryptionKeys } from '../support/test-app';

/**
 * Helpers of the multi-process suites: a fleet of token-vendor processes (the production entry
 * point) on one Redis, in front of the sandbox IdP running in the test process.
 */

export const ENVIRONMENT = 'uat';
export const CALLER_KEY = 'fleet-caller-key-0001-aaaaaaaaaaaaaaaaaaaa';

export function secretOf(clientId: string): string {
  return `fleet-secret-${clientId}-0001`;
}

/** The sandbox's view of the clients a fleet is configured with. */
export function sandboxClients(clientIds: readonly string[]): SandboxClient[] {
  return clientIds.map((clientId) => ({
    clientId,
    secret: secretOf(clientId),
    scopes: ['deals-read'],
  }));
}

/** The refresh lock's life for an environment timeout (token-fetcher.ts: timeoutMs × 3 attempts + 2 s slack). */
export function lockTtlMsFor(timeoutMs: number): number {
  return timeoutMs * 3 + 2_000;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------------------------
// The IdP tap: a transparent HTTP proxy in front of the sandbox that every replica uses as its
// token URL, so a test knows which replica sent each token request (nothing in the service logs
// lock ownership).

export interface TapRecord {
  replica: string;
  /** The client_id of the form body (client_secret_post). */
  clientId?: string;
  at: number;
  endedAt?: number;
  status?: number;
}

export interface IdpTap {
  readonly replica: string;
  readonly tokenUrl: string;
  readonly records: TapRecord[];
  close(): Promise<void>;
}

export async function startIdpTap(
  sandbox: RunningSandbox,
  events: EventEmitter,
): Promise<{ tokenUrl: string; records: TapRecord[]; close(): Promise<void> }> {
  const target = new URL(sandbox.url);
  const records: TapRecord[] = [];
  const owners = new WeakMap<Socket, string>();
  let tapPort = 0;
  const server: Server = createServer((req, res) => {
    const socket = req.socket;
    let replica = owners.get(socket);
    if (replica === undefined) {
      replica = replicaOfConnection(socket.remotePort ?? 0, tapPort);
      owners.set(socket, replica);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record: TapRecord = {
        replica: replica,
        clientId: new URLSearchParams(body.toString('utf8')).get('client_id') ?? undefined,
        at: Date.now(),
      };
      records.push(record);
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          path: req.url,
          method: req.method,
          headers: req.headers,
          agent: false,
        },
        (answer) => {
          record.status = answer.statusCode;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('end', () => (record.endedAt = Date.now()));
        },
      );
      upstream.on('error', () => {
        record.endedAt = Date.now();
        if (!res.headersSent) res.writeHead(502).end();
        else res.destroy();
      });
      // The replica went away (killed): abandon the upstream request too.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end(body);
      // Last: a listener may pause or kill the replica that sent it.
      events.emit('request', record);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tapPort = (server.address() as AddressInfo).port;
  return {
    tokenUrl: `http://127.0.0.1:${tapPort}/connect/token`,
    records,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Which replica owns the TCP connection from `peerPort` to the tap: the socket's inode from
 * /proc/net/tcp, then the replica process holding that inode among its descriptors. Every
 * replica is configured with the same token URL (the stored token is bound to it), so the
 * connection is the only thing that tells them apart.
 */
function replicaOfConnection(peerPort: number, tapPort: number): string {
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | undefined;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (cols[1].endsWith(`:${hex(peerPort)}`) && cols[2].endsWith(`:${hex(tapPort)}`)) {
        inode = cols[9];
        break;
      }
    }
    if (inode) break;
  }
  if (!inode) return 'unknown';
  for (const [pid, name] of runningReplicas()) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return name;
        } catch {
          // closed meanwhile
        }
      }
    } catch {
      // the process is gone
    }
  }
  return 'unknown';
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

// ---------------------------------------------------------------------------------------------
// Redis links: a TCP relay per replica in front of Redis whose client-to-server direction can be
// held (bytes kept, not forwarded) and released later, as a stalled network path would.

export interface RedisLink {
  readonly url: string;
  /** Keep every byte the replica sends to Redis from now on. */
  hold(): void;
  /** Forward what was held (in order) and stop holding; returns the bytes released. */
  release(): Buffer;
  /** What is held right now. */
  held(): Buffer;
  close(): Promise<void>;
}

export async function startRedisLink(upstreamUrl: string): Promise<RedisLink> {
  const upstream = new URL(upstreamUrl);
  let holding = false;
  let queue: { socket: Socket; data: Buffer }[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((client) => {
    const toRedis = connect(Number(upstream.port || 6379), upstream.hostname);
    sockets.add(client);
    sockets.add(toRedis);
    client.on('data', (data: Buffer) => {
      if (holding) queue.push({ socket: toRedis, data });
      else toRedis.write(data);
    });
    toRedis.pipe(client);
    const end = (): void => {
      client.destroy();
      toRedis.destroy();
      sockets.delete(client);
      sockets.delete(toRedis);
    };
    client.on('error', end);
    toRedis.on('error', end);
    client.on('close', end);
    toRedis.on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    hold: () => {
      holding = true;
    },
    held: () => Buffer.concat(queue.map((q) => q.data)),
    release() {
      const released = Buffer.concat(queue.map((q) => q.data));
      for (const { socket, data } of queue) if (!socket.destroyed) socket.write(data);
      queue = [];
      holding = false;
      return released;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
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

// ---------------------------------------------------------------------------------------------
// The fleet.

export interface FleetOptions {
  sandbox: RunningSandbox;
  clientIds: string[];
  /** Default 3. */
  size?: number;
  /** The environment's timeoutMs (the lock TTL is timeoutMs × 3 + 2000). */
  timeoutMs: number;
  refresh: { ratio: number; minTtlSeconds: number; minRejectionIntervalSeconds?: number };
  /** Per client id, a configured scope (default none). */
  scopes?: Record<string, string>;
  /** The fleet's caller is an admin (may use /admin). */
  admin?: boolean;
  /** Default: TEST_REDIS_URL (the suite's shared Redis). */
  redisUrl?: string;
  /** One IdP tap per replica (each replica gets its own tokenUrl). */
  taps?: boolean;
  /** One Redis link per replica (each replica gets its own REDIS_URL, relayed to the fleet's Redis). */
  redisLinks?: boolean;
  /** Extra environment of replica `index` (e.g. the test-only wall-clock offset), also on restart. */
  replicaEnv?: (index: number) => NodeJS.ProcessEnv;
}

export interface TokenAnswer {
  replica: string;
  status: number;
  body: Record<string, unknown>;
  at: number;
  error?: string;
}

export interface Fleet {
  readonly replicas: Replica[];
  readonly keyPrefix: string;
  readonly taps: IdpTap[];
  /** Per replica, in replica order (redisLinks only). */
  readonly redisLinks: RedisLink[];
  /** Emits 'request' (TapRecord) for every token request a replica sends (taps only). */
  readonly tapEvents: EventEmitter;
  /** An ioredis client of the fleet's Redis, for inspection (never flushes). */
  readonly redis: Redis;
  tokenKey(clientId: string): string;
  lockKey(clientId: string): string;
  /** The stored token's expiry (the clear `<ms>|` prefix of the value), or undefined when none. */
  storedExpiry(clientId: string): Promise<number | undefined>;
  /** The client's secret file, which every replica's configuration names (rotation tests). */
  secretFile(clientId: string): string;
  getToken(
    replica: Replica,
    clientId: string,
    query?: string,
    timeoutMs?: number,
  ): Promise<TokenAnswer>;
  /**
   * Starts replica `index` again (after it was stopped) as a new process on the same tap and
   * Redis link, optionally with other scopes in its configuration; replaces it in `replicas`.
   */
  restart(index: number, scopes?: Record<string, string>): Promise<Replica>;
  stop(): Promise<void>;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const size = options.size ?? 3;
  const keyPrefix = `tv-fleet-${randomUUID()}:`;
  const redisUrl = options.redisUrl ?? requiredTestRedisUrl();
  const names = Array.from({ length: size }, (_, i) => `r${i + 1}`);
  const tapEvents = new EventEmitter();
  const tap = options.taps ? await startIdpTap(options.sandbox, tapEvents) : undefined;
  // One view per replica of the one tap's records.
  const taps: IdpTap[] = tap
    ? names.map((replica) => ({
        replica,
        tokenUrl: tap.tokenUrl,
        get records() {
          return tap.records.filter((r) => r.replica === replica);
        },
        close: () => Promise.resolve(),
      }))
    : [];
  const redisLinks = options.redisLinks
    ? await Promise.all(names.map(() => startRedisLink(redisUrl)))
    : [];
  const files: ServiceConfigFiles = writeServiceConfig({
    environments: {
      [ENVIRONMENT]: { tokenUrl: options.sandbox.tokenUrl, timeoutMs: options.timeoutMs },
    },
    clients: options.clientIds.map((clientId) => ({
      clientId,
      environment: ENVIRONMENT,
      secret: secretOf(clientId),
      scope: options.scopes?.[clientId],
    })),
    callers: [
      { name: 'fleet-caller', keys: [CALLER_KEY], clients: ['*'], admin: options.admin ?? false },
    ],
    refresh: options.refresh,
  });
  const encryptionKeys = testEncryptionKeys();
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    commandTimeout: 1000,
    retryStrategy: () => 100,
  });
  redis.on('error', () => undefined); // the outage suites kill this Redis on purpose

  const spawn = (i: number, scopes?: Record<string, string>): Promise<Replica> =>
    startReplica({
      name: names[i],
      env: {
        TOKEN_VENDOR_CONFIG:
          options.taps || scopes
            ? files.writeVariant(
                `${names[i]}${scopes ? `-${randomUUID().slice(0, 8)}` : ''}`,
                {
                  [ENVIRONMENT]: {
                    tokenUrl: tap ? tap.tokenUrl : options.sandbox.tokenUrl,
                    timeoutMs: options.timeoutMs,
                  },
                },
                scopes,
              )
            : files.configPath,
        REDIS_URL: options.redisLinks ? redisLinks[i].url : redisUrl,
        REDIS_KEY_PREFIX: keyPrefix,
        TOKEN_VENDOR_ENCRYPTION_KEYS: encryptionKeys,
        LOG_LEVEL: 'debug',
        ...options.replicaEnv?.(i),
      },
    });
  let replicas: Replica[] = [];
  try {
    replicas = await Promise.all(names.map((_name, i) => spawn(i)));
  } catch (e) {
    await killAllReplicas();
    await Promise.all([...(tap ? [tap] : []), ...redisLinks].map((t) => t.close()));
    redis.disconnect();
    files.remove();
    throw e;
  }

  const tokenKey = (clientId: string): string => `${keyPrefix}{${ENVIRONMENT}/${clientId}}:token`;
  return {
    replicas,
    keyPrefix,
    taps,
    redisLinks,
    tapEvents,
    redis,
    tokenKey,
    lockKey: (clientId) => `${keyPrefix}{${ENVIRONMENT}/${clientId}}:lock`,
    async storedExpiry(clientId) {
      const raw = await redis.get(tokenKey(clientId));
      return raw === null ? undefined : expiryOf(raw);
    },
    secretFile: (clientId) => join(files.dir, 'secrets', `${ENVIRONMENT}--${clientId}`),
    getToken: (replica, clientId, query, timeoutMs) =>
      getToken(replica, clientId, query, timeoutMs),
    async restart(index, scopes) {
      const replica = await spawn(index, scopes);
      replicas[index] = replica;
      return replica;
    },
    async stop() {
      await killAllReplicas();
      await Promise.all([...(tap ? [tap] : []), ...redisLinks].map((t) => t.close()));
      // The fleet's keys expire by themselves (TTL = token life); remove them now anyway.
      await Promise.all(
        options.clientIds.map((id) =>
          redis
            .del(
              tokenKey(id),
              `${keyPrefix}{${ENVIRONMENT}/${id}}:revoked`,
              `${keyPrefix}{${ENVIRONMENT}/${id}}:forced-refresh`,
            )
            .catch(() => undefined),
        ),
      );
      redis.disconnect();
      files.remove();
    },
  };
}

export function expiryOf(raw: string): number {
  const sep = raw.indexOf('|');
  const value = Number(raw.slice(0, sep));
  if (sep <= 0 || !Number.isSafeInteger(value))
    throw new Error('stored value has an unknown format');
  return value;
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

export async function getToken(
  replica: Replica,
  clientId: string,
  query = '',
  timeoutMs = 15_000,
): Promise<TokenAnswer> {
  const at = Date.now();
  try {
    const res = await fetch(
      `${replica.url}/tokens/${encodeURIComponent(clientId)}${query ? `?${query}` : ''}`,
      {
        headers: { authorization: `Bearer ${CALLER_KEY}` },
        signal: AbortSignal.timeout(timeoutMs),
      },
    );
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { raw: text };
    }
    return { replica: replica.name, status: res.status, body, at };
  } catch (e) {
    return { replica: replica.name, status: 0, body: {}, at, error: (e as Error).message };
  }
}

/** A POST to a replica with the fleet's caller key; the parsed JSON answer. */
export async function postJson(
  replica: Replica,
  path: string,
  body?: unknown,
  timeoutMs = 15_000,
): Promise<{ status: number; body: Record<string, unknown>; at: number }> {
  const at = Date.now();
  const res = await fetch(`${replica.url}${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${CALLER_KEY}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed, at };
}

/** SHA-256 of a token, lowercase hex: how a rejection report names it. */
export function sha256Of(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
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

// ---------------------------------------------------------------------------------------------
// Steady load.

export interface Load {
  readonly results: TokenAnswer[];
  /** Stops sending and resolves with every answer once the last one is in. */
  stop(): Promise<TokenAnswer[]>;
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
): Load {
  const results: TokenAnswer[] = [];
  const pending = new Set<Promise<void>>();
  let n = 0;
  const timer = setInterval(
    () => {
      const list = targets();
      if (list.length === 0) return;
      const replica = list[n++ % list.length];
      const p = fleet.getToken(replica, clientId).then((r) => {
        results.push(r);
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
 * Attempts the replicas' OAuth client retried since `since` for `clientId`, by cause. A retry is
 * another IdP request of the same fetch (same flight), e.g. after an attempt timed out because
 * the test process, which hosts the sandbox IdP, was too busy sending a burst to answer in time.
 */
export function retriedAttempts(
  replicas: Replica[],
  clientId: string,
  since: number,
): Record<string, number> {
  const causes: Record<string, number> = {};
  for (const r of replicas) {
    for (const e of r.entries()) {
      if (e.msg !== 'Token request failed; retrying' || e.clientId !== clientId) continue;
      if (Date.parse(String(e.time)) < since) continue;
      const cause = String(e.cause);
      causes[cause] = (causes[cause] ?? 0) + 1;
    }
  }
  return causes;
}
