import {
  Inject,
  Logger,
  Module,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { CLOCK, CLOCK_SKEW, type Clock, type ClockSkew } from '@app/clock';
import { ConfigService } from '@app/config';
import { PeriodicTasks } from '@app/periodic';
import type { Cluster, Redis } from 'ioredis';
import { MemoryTokenStore } from './memory-token.store';
import {
  REDIS_CLIENT,
  createRedisClient,
  waitUntilReady,
  REDIS_CONNECT_TIMEOUT_MS,
} from './redis-client.factory';
import { RedisTokenStore } from './redis-token.store';
import { TokenCipher } from './token-cipher';
import { REFRESH_LOCK, TOKEN_STORE, type TokenStore } from './token-store';
import {
  FLEET_CHANNEL,
  LocalFleetChannel,
  RedisFleetChannel,
  type FleetChannel,
} from './fleet-channel';
import { RedisKeys } from './redis-keys';
import { ClockSkewMonitor } from './clock-skew.monitor';
import { REDIS_TLS, RedisTlsFilesWatcher, RedisTls } from './redis-tls';

/**
 * Provides TOKEN_STORE: Redis when the environment names one, otherwise memory (one replica
 * only; a warning says so). REDIS_CLIENT is null in memory mode. Not global (README "How the
 * pieces fit"): the modules that use the store, the lock or the fleet channel import it; it is a
 * static module, so every import is the one instance (one Redis client, one fleet channel).
 */
@Module({
  providers: [
    {
      provide: REDIS_TLS,
      inject: [ConfigService],
      useFactory: (config: ConfigService): RedisTls | null =>
        config.runtime.redis ? RedisTls.from(config.runtime.redis.connection) : null,
    },
    RedisTlsFilesWatcher,
    {
      provide: REDIS_CLIENT,
      inject: [ConfigService, REDIS_TLS],
      useFactory: (config: ConfigService, tls: RedisTls | null): Redis | Cluster | null =>
        config.runtime.redis ? createRedisClient(config.runtime.redis, tls) : null,
    },
    {
      provide: TOKEN_STORE,
      inject: [ConfigService, CLOCK, REDIS_CLIENT, CLOCK_SKEW],
      useFactory: (
        config: ConfigService,
        clock: Clock,
        redis: Redis | Cluster | null,
        skew: ClockSkew,
      ): TokenStore => {
        if (!redis) {
          new Logger('TokenStore').warn(
            'REDIS_URL is not set: tokens are kept in memory; run only one replica in this mode',
          );
          return new MemoryTokenStore(clock);
        }
        return new RedisTokenStore(
          redis,
          new TokenCipher(config.runtime.encryptionKeys),
          clock,
          config.runtime.keyPrefix,
          skew,
        );
      },
    },
    ClockSkewMonitor,
    // The store implements the lock too (same keys, same slot); it is its own seam.
    { provide: REFRESH_LOCK, useExisting: TOKEN_STORE },
    {
      provide: FLEET_CHANNEL,
      inject: [ConfigService, REDIS_CLIENT, CLOCK, PeriodicTasks],
      useFactory: (
        config: ConfigService,
        redis: Redis | Cluster | null,
        clock: Clock,
        tasks: PeriodicTasks,
      ): FleetChannel =>
        redis
          ? new RedisFleetChannel(
              redis,
              new RedisKeys(config.runtime.keyPrefix).fleetChannel(),
              tasks,
              () => clock.monotonic(),
            )
          : new LocalFleetChannel(() => clock.monotonic()),
    },
  ],
  exports: [TOKEN_STORE, REFRESH_LOCK, REDIS_CLIENT, FLEET_CHANNEL, ClockSkewMonitor],
})
export class TokenStoreModule implements OnModuleInit, OnApplicationShutdown {
  constructor(
    @Optional() @Inject(REDIS_CLIENT) private readonly redis: Redis | Cluster | null,
    @Inject(FLEET_CHANNEL) private readonly fleet: FleetChannel,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.redis && !(await waitUntilReady(this.redis, REDIS_CONNECT_TIMEOUT_MS))) {
      new Logger('TokenStore').warn('redis is not reachable yet; serving without it until it is');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.fleet.close();
    if (!this.redis) return;
    await this.redis.quit().catch(() => this.redis?.disconnect());
  }
}
