import { Logger } from '@nestjs/common';
import type { RedisConnectionOptions, RedisSettings } from '@app/config';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisTls } from './redis-tls';

/** Bounds on every Redis interaction, so a slow or absent Redis never hangs a caller. */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
export const REDIS_MAX_RECONNECT_DELAY_MS = 2_000;

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

const COMMON_OPTIONS: RedisOptions = {
  // Connected by createRedisClient once hearEveryStreamError is in place.
  lazyConnect: true,
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
  // Fail fast while disconnected instead of queueing: callers fall back to the replica's
  // own copy or a direct fetch, and the queue cannot grow without bound during an outage.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  retryStrategy: (attempt: number) => Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
};

/**
 * Builds the ioredis client for the configured topology; logs connection events (never the URL).
 * `tls` (by default RedisTls.from the same settings) is shared, not copied: a CA it adopts later
 * is used by the client's next connection.
 */
export function createRedisClient(
  settings: RedisSettings,
  tls: RedisTls | null = RedisTls.from(settings.connection),
): Redis | Cluster {
  const logger = new Logger('Redis');
  const connection = connectionOptions(settings.connection, tls);
  let client: Redis | Cluster;
  switch (settings.mode) {
    case 'standalone':
      client = new Redis(settings.url, { ...COMMON_OPTIONS, ...connection.node });
      break;
    case 'sentinel':
      client = new Redis({
        ...COMMON_OPTIONS,
        ...connection.node,
        ...connection.sentinel,
        sentinels: [...settings.sentinels],
        name: settings.name,
        // Fail over quickly: a promoted master is found on the next reconnect.
        sentinelRetryStrategy: (attempt: number) =>
          Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
      });
      break;
    case 'cluster':
      client = new Cluster([...settings.nodes], {
        enableOfflineQueue: false,
        lazyConnect: true,
        redisOptions: { ...COMMON_OPTIONS, ...connection.node },
        clusterRetryStrategy: (attempt: number) =>
          Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
      });
      break;
  }
  hearEveryStreamError(client);
  // ioredis emits an error per failed reconnect (every 2 s at most during an outage): the first
  // of an outage, and each new reason, is a warning (a TLS trust mistake at start shows with its
  // reason); repeats are debug.
  let lastWarned: string | undefined;
  client.on('ready', () => {
    lastWarned = undefined;
    logger.log({ mode: settings.mode }, 'redis connection ready');
  });
  client.on('error', (e: Error) => {
    const repeat = e.message === lastWarned;
    lastWarned = e.message;
    if (repeat) logger.debug?.({ err: { message: e.message } }, 'redis connection error');
    else logger.warn({ err: { message: e.message } }, 'redis connection error');
  });
  client.on('end', () => logger.warn('redis connection closed'));
  // A failed first connection is reported by the 'error' listener above and retried by ioredis.
  client.connect().catch(() => undefined);
  return client;
}

/** What hearEveryStreamError reaches inside an ioredis client (not in its typings). */
interface ConnectorHolder {
  connector: { connect(onError: unknown): Promise<NodeJS.EventEmitter> };
}

/**
 * ioredis listens for a connection's `error` only once (Redis#connect and its connectors). A TLS
 * connection ended while its handshake fails (a quit at shutdown, a close in a test) can emit a
 * second one, the server's alert, which, unheard, is thrown out of the event loop and ends the
 * process (README "Redis over TLS"). Every stream this client opens, and every Cluster node's, gets
 * a lasting listener; ioredis still handles the first error as before. Applied to each client the
 * service makes (createRedisClient, the fleet channel's subscriber), before it first connects: the
 * clients are made with `lazyConnect`. Not reached: the connections ioredis makes inside a
 * Cluster (its subscriber) and a Sentinel client (to the Sentinels), which it ends only once
 * connected.
 */
export function hearEveryStreamError(client: Redis | Cluster): void {
  if (client instanceof Cluster) {
    client.on('+node', (node: Redis) => hearEveryStreamError(node));
    return;
  }
  const connector = (client as unknown as ConnectorHolder).connector;
  const connect = connector.connect.bind(connector);
  connector.connect = async (onError) => {
    const stream = await connect(onError);
    stream.on('error', ignoreStreamError);
    return stream;
  };
}

function ignoreStreamError(): void {
  // The first error of a stream reaches ioredis's own listener, which reconnects and reports it.
}

/** Waits (bounded) for the first connection, so a normal start serves from Redis at once. */
export async function waitUntilReady(client: Redis | Cluster, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onReady = (): void => finish(true);
    function finish(ready: boolean): void {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    }
    client.once('ready', onReady);
  });
}

/** AUTH/ACL user and TLS, for the data nodes and (separately) for the Sentinels. */
function connectionOptions(
  options: RedisConnectionOptions = {},
  redisTls: RedisTls | null,
): {
  node: RedisOptions;
  sentinel: RedisOptions;
} {
  const tls = redisTls?.options;
  return {
    node: {
      ...(options.username ? { username: options.username } : {}),
      ...(options.password ? { password: options.password } : {}),
      ...(tls ? { tls } : {}),
    },
    sentinel: {
      ...(options.sentinelUsername ? { sentinelUsername: options.sentinelUsername } : {}),
      ...(options.sentinelPassword ? { sentinelPassword: options.sentinelPassword } : {}),
      ...(tls ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    },
  };
}
