import { EventEmitter } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RunningSandbox, SandboxClient } from '@app/identity-sandbox';
import {
  secretPathOf,
  serviceEnvironment,
  testEncryptionKeys,
  writeServiceConfig,
  type ServiceConfigSpec,
} from './config';
import { closeServer, httpRequest, listenOnLoopback } from './http';
import { killAllReplicas, runningReplicas, startReplica, type Replica } from './process';
import { requireTestRedisUrl } from './redis-server';

/**
 * A fleet of token-vendor processes (the production entry point) on one Redis, in front of the
 * sandbox IdP running in the test process: what startService starts with `run: 'fleet'`.
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
  tapPort = await listenOnLoopback(server);
  return {
    tokenUrl: `http://127.0.0.1:${tapPort}/connect/token`,
    records,
    close: () => closeServer(server),
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
  const port = await listenOnLoopback(server);
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

// ---------------------------------------------------------------------------------------------
// The fleet.

/** `startService({ run: 'fleet', ... })`: replicas r1, r2, ... configured alike (README "Running a fleet"). */
export interface FleetOptions {
  run: 'fleet';
  sandbox: RunningSandbox;
  clientIds: string[];
  /** Default 3. */
  size?: number;
  /** The environment's timeoutMs (the refresh lock's life derives from it: lockTtlMs in @app/tokens). */
  timeoutMs: number;
  refresh: { ratio: number; minTtlSeconds: number; minRejectionIntervalSeconds?: number };
  /** Per client id, a configured scope (default none). */
  scopes?: Record<string, string>;
  /** The fleet's caller is an admin (may use /admin). */
  admin?: boolean;
  /** A Redis URL; default TEST_REDIS_URL (the suite's shared Redis). */
  redis?: string;
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
  const redisUrl = options.redis ?? requireTestRedisUrl();
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
  // Secrets are written once; a replica's own configuration (its tap, other scopes) names the same files.
  const dir = mkdtempSync(join(tmpdir(), 'token-vendor-fleet-'));
  const spec = (
    tokenUrl: string,
    scopes: Record<string, string> = {},
    writeSecrets = false,
  ): ServiceConfigSpec => ({
    environments: { [ENVIRONMENT]: { tokenUrl, timeoutMs: options.timeoutMs } },
    clients: options.clientIds.map((clientId) => {
      const client = { clientId, environment: ENVIRONMENT };
      return {
        ...client,
        ...(writeSecrets
          ? { secret: secretOf(clientId) }
          : { secretFile: secretPathOf(dir, client) }),
        scope: scopes[clientId] ?? options.scopes?.[clientId],
      };
    }),
    callers: [
      { name: 'fleet-caller', keys: [CALLER_KEY], clients: ['*'], admin: options.admin ?? false },
    ],
    refresh: options.refresh,
  });
  const configPath = writeServiceConfig(
    join(dir, 'config.yaml'),
    spec(options.sandbox.tokenUrl, {}, true),
  );
  const encryptionKeys = testEncryptionKeys();
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    commandTimeout: 1000,
    retryStrategy: () => 100,
  });
  redis.on('error', () => undefined); // the outage suites kill this Redis on purpose

  const spawn = (i: number, scopes?: Record<string, string>): Promise<Replica> => {
    const ownConfig =
      options.taps || scopes
        ? writeServiceConfig(
            join(dir, `config-${names[i]}${scopes ? `-${randomUUID().slice(0, 8)}` : ''}.yaml`),
            spec(tap ? tap.tokenUrl : options.sandbox.tokenUrl, scopes),
          )
        : configPath;
    const store = {
      redis: options.redisLinks ? redisLinks[i].url : redisUrl,
      keyPrefix,
      encryptionKeys,
    };
    return startReplica({
      name: names[i],
      env: { ...serviceEnvironment(ownConfig, store), ...options.replicaEnv?.(i) },
    });
  };
  let replicas: Replica[] = [];
  try {
    replicas = await Promise.all(names.map((_name, i) => spawn(i)));
  } catch (e) {
    await killAllReplicas();
    await Promise.all([...(tap ? [tap] : []), ...redisLinks].map((t) => t.close()));
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
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
    secretFile: (clientId) => secretPathOf(dir, { clientId, environment: ENVIRONMENT }),
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
      rmSync(dir, { recursive: true, force: true });
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
/** A caller's GET /tokens/:clientId to a replica with the fleet's caller key; a network error is status 0. */
export async function getToken(
  replica: Replica,
  clientId: string,
  query = '',
  timeoutMs = 15_000,
): Promise<TokenAnswer> {
  const at = Date.now();
  try {
    const res = await httpRequest(
      `${replica.url}/tokens/${encodeURIComponent(clientId)}${query ? `?${query}` : ''}`,
      { key: CALLER_KEY, timeoutMs },
    );
    return { replica: replica.name, status: res.status, body: jsonOrRaw(res.text), at };
  } catch (e) {
    return { replica: replica.name, status: 0, body: {}, at, error: (e as Error).message };
  }
}

/** A body as JSON, or `{ raw }` when it is not JSON. */
export function jsonOrRaw(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { raw: text };
  }
}
