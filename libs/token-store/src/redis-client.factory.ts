import { Logger } from '@nestjs/common';
import type { RedisConnectionOptions, RedisSettings } from '@app/config';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisTls } from './redis-tls';
import { hearEveryStreamError } from './stream-error-listener';

/** Bounds on every Redis interaction, so a slow or absent Redis never hangs a caller. */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
export const REDIS_MAX_RECONNECT_DELAY_MS = 2_000;

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');
/** Distinct connection-error reasons warned about in one outage; past them, debug only. */
const MAX_REASONS_WARNED = 10;

const COMMON_OPTIONS: RedisOptions = {
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
  hearEveryStreamError();
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
        redisOptions: { ...COMMON_OPTIONS, ...connection.node },
        clusterRetryStrategy: (attempt: number) =>
          Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
      });
      break;
  }
  // ioredis emits an error per failed reconnect (every 2 s at most during an outage): each reason
  // is a warning once per outage (a TLS trust mistake at start shows with its reason), repeats
  // are debug. Sentinel's reason carries its retry delay, and a Cluster's real one is in
  // `lastNodeError`.
  const warned = new Set<string>();
  client.on('ready', () => {
    warned.clear();
    logger.log({ mode: settings.mode }, 'redis connection ready');
  });
  client.on('error', (e: Error & { lastNodeError?: Error }) => {
    const err = {
      message: e.message,
      ...(e.lastNodeError ? { lastNodeError: e.lastNodeError.message } : {}),
    };
    const reason = `${err.message}\u0000${err.lastNodeError ?? ''}`.replace(/\d+ms\b/g, 'Nms');
    if (warned.has(reason) || warned.size >= MAX_REASONS_WARNED)
      return logger.debug?.({ err }, 'redis connection error');
    warned.add(reason);
    logger.warn({ err }, 'redis connection error');
  });
  client.on('end', () => logger.warn('redis connection closed'));
  return client;
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
