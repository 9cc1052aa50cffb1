import {
  Global,
  Inject,
  Logger,
  Module,
  Optional,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService } from '@app/config';
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
import { TOKEN_STORE, type TokenStore } from './token-store';

/**
 * Provides TOKEN_STORE: Redis when the environment names one, otherwise memory (one replica
 * only; a warning says so). REDIS_CLIENT is null in memory mode.
 */
@Global()
@Module({
  providers: [
    {
      provide: REDIS_CLIENT,
      inject: [ConfigService],
      useFactory: (config: ConfigService): Redis | Cluster | null =>
        config.runtime.redis ? createRedisClient(config.runtime.redis) : null,
    },
    {
      provide: TOKEN_STORE,
      inject: [ConfigService, CLOCK, REDIS_CLIENT],
      useFactory: (
        config: ConfigService,
        clock: Clock,
        redis: Redis | Cluster | null,
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
        );
      },
    },
  ],
  exports: [TOKEN_STORE, REDIS_CLIENT],
})
export class TokenStoreModule implements OnModuleInit, OnApplicationShutdown {
  constructor(@Optional() @Inject(REDIS_CLIENT) private readonly redis: Redis | Cluster | null) {}

  async onModuleInit(): Promise<void> {
    if (this.redis && !(await waitUntilReady(this.redis, REDIS_CONNECT_TIMEOUT_MS))) {
      new Logger('TokenStore').warn('redis is not reachable yet; serving without it until it is');
    }
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.redis) return;
    await this.redis.quit().catch(() => this.redis?.disconnect());
  }
}
