import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { CaBundleFile, type RedisConnectionOptions } from '@app/config';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';

/** How often REDIS_TLS_CA_FILE is looked at (a `stat`; read only when it changed). */
export const REDIS_CA_FILE_RECHECK_MS = 2_000;

export const REDIS_TLS = Symbol('REDIS_TLS');

/**
 * The TLS options every Redis connection (data nodes and Sentinels) is made with. ioredis reads
 * them at each connect, so a bundle adopted here is what the next connection trusts; connections
 * already open stay, verified at their handshake (README "Redis over TLS").
 */
export class RedisTls {
  /** Handed to ioredis as `tls` / `sentinelTLS`; its `ca` is replaced in place. */
  readonly options: { ca?: string } = {};

  constructor(private readonly caFile?: CaBundleFile) {
    // Without a CA file, Node's bundled CAs are trusted (a `ca` option would replace them).
    if (caFile) this.options.ca = caFile.pem;
  }

  /** TLS is on (REDIS_TLS=true or a CA file): the settings, opened; else null. */
  static from(connection: RedisConnectionOptions | undefined): RedisTls | null {
    const tls = connection?.tls;
    if (!tls) return null;
    return new RedisTls(tls.caFile ? new CaBundleFile(tls.caFile) : undefined);
  }

  get watchesCaFile(): boolean {
    return this.caFile !== undefined;
  }

  /** Looks at the CA file again; a changed bundle is used by the next connection. */
  recheck(): ReturnType<CaBundleFile['recheck']> {
    if (!this.caFile) return 'unchanged';
    const check = this.caFile.recheck();
    if (check === 'changed') this.options.ca = this.caFile.pem;
    return check;
  }
}

/**
 * Looks at REDIS_TLS_CA_FILE every REDIS_CA_FILE_RECHECK_MS, so a rotated Redis CA is trusted
 * without a restart, like an environment's `caFile` (README "Redis over TLS"). A file missing for a
 * moment, or holding no certificate (or too large), leaves the last bundle in use.
 */
@Injectable()
export class RedisCaFileWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly task: PeriodicTask | undefined;

  constructor(
    @Inject(REDIS_TLS) private readonly tls: RedisTls | null,
    tasks: PeriodicTasks,
  ) {
    if (tls?.watchesCaFile)
      this.task = tasks.create('redis CA file check', REDIS_CA_FILE_RECHECK_MS, () => this.check());
  }

  onApplicationBootstrap(): void {
    this.task?.start();
  }

  onApplicationShutdown(): void {
    this.task?.stop();
  }

  check(): void {
    const check = this.tls?.recheck() ?? 'unchanged';
    if (check === 'changed') {
      this.logger.log({ msg: 'REDIS_TLS_CA_FILE changed; new Redis connections trust its bundle' });
    } else if (check !== 'unchanged') {
      this.logger.warn({
        msg: 'REDIS_TLS_CA_FILE cannot be used; the previous bundle stays',
        reason: check.unusable,
      });
    }
  }
}
