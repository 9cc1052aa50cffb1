import { Logger } from '@nestjs/common';
import type { RedisSettings } from '@app/config';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** Bounds on every Redis interaction, so a slow or absent Redis never hangs a caller. */
export const REDIS_COMMAND_TIMEOUT_MS = 1_000;
export const REDIS_CONNECT_TIMEOUT_MS = 2_000;
export const REDIS_MAX_RECONNECT_DELAY_MS = 2_000;

export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

const COMMON_OPTIONS: RedisOptions = {
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  connectTimeout: REDIS_CONNECT_TIMEOUT_MS,
  // Fail fast while disconnected instead of queueing: callers fall back to the replica's
  // own copy or a direct fetch, and the queue cannot grow without bound during an outage.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  retryStrategy: (attempt: number) => Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
};

/** Builds the ioredis client for the configured topology; logs connection events (never the URL). */
export function createRedisClient(settings: RedisSettings): Redis | Cluster {
  const logger = new Logger('Redis');
  let client: Redis | Cluster;
  switch (settings.mode) {
    case 'standalone':
      client = new Redis(settings.url, COMMON_OPTIONS);
      break;
    case 'sentinel':
      client = new Redis({
        ...COMMON_OPTIONS,
        sentinels: [...settings.sentinels],
        name: settings.name,
      });
      break;
    case 'cluster':
      client = new Cluster([...settings.nodes], {
        enableOfflineQueue: false,
        redisOptions: COMMON_OPTIONS,
        clusterRetryStrategy: (attempt: number) =>
          Math.min(attempt * 200, REDIS_MAX_RECONNECT_DELAY_MS),
      });
      break;
  }
  let wasReady = false;
  client.on('ready', () => {
    wasReady = true;
    logger.log({ mode: settings.mode }, 'redis connection ready');
  });
  client.on('error', (e: Error) => {
    // ioredis emits an error per failed reconnect; log them at debug once the outage is known.
    if (wasReady) logger.warn({ err: { message: e.message } }, 'redis connection error');
    else logger.debug?.({ err: { message: e.message } }, 'redis connection error');
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
