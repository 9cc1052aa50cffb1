import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  CaBundleFile,
  REDIS_TLS_PAIR_FIELDS,
  TlsPairFiles,
  type CaBundleCheck,
  type RedisConnectionOptions,
} from '@app/config';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';

/** How often REDIS_TLS_CA_FILE and the client certificate pair are looked at (a `stat`). */
export const REDIS_TLS_FILES_RECHECK_MS = 2_000;

export const REDIS_TLS = Symbol('REDIS_TLS');

/** What one look at the TLS files found, per file set. */
export interface RedisTlsCheck {
  ca: CaBundleCheck;
  clientCertificate: CaBundleCheck;
}

/**
 * The TLS options every Redis connection (data nodes and Sentinels) is made with. ioredis reads
 * them at each connect, so a bundle or client certificate adopted here is what the next
 * connection uses; connections already open stay, verified at their handshake (README "Redis over
 * TLS").
 */
export class RedisTls {
  /** Handed to ioredis as `tls` / `sentinelTLS`; its fields are replaced in place. */
  readonly options: { ca?: string; cert?: string; key?: string } = {};

  constructor(
    private readonly caFile?: CaBundleFile,
    private readonly clientCertificate?: TlsPairFiles,
  ) {
    // Without a CA file, Node's bundled CAs are trusted (a `ca` option would replace them).
    if (caFile) this.options.ca = caFile.pem;
    if (clientCertificate) {
      this.options.cert = clientCertificate.cert;
      this.options.key = clientCertificate.key;
    }
  }

  /** TLS is on (REDIS_TLS=true, a CA file or a client certificate): the settings, opened; else null. */
  static from(connection: RedisConnectionOptions | undefined): RedisTls | null {
    const tls = connection?.tls;
    if (!tls) return null;
    return new RedisTls(
      tls.caFile ? new CaBundleFile(tls.caFile) : undefined,
      tls.certFile && tls.keyFile
        ? new TlsPairFiles(tls.certFile, tls.keyFile, REDIS_TLS_PAIR_FIELDS)
        : undefined,
    );
  }

  get watchesFiles(): boolean {
    return this.caFile !== undefined || this.clientCertificate !== undefined;
  }

  /** Looks at the files again; what changed is used by the next connection. */
  recheck(): RedisTlsCheck {
    const ca = this.caFile?.recheck() ?? 'unchanged';
    if (ca === 'changed') this.options.ca = this.caFile!.pem;
    const clientCertificate = this.clientCertificate?.recheck() ?? 'unchanged';
    if (clientCertificate === 'changed') {
      this.options.cert = this.clientCertificate!.cert;
      this.options.key = this.clientCertificate!.key;
    }
    return { ca, clientCertificate };
  }
}

/**
 * Looks at REDIS_TLS_CA_FILE and the client certificate pair every REDIS_TLS_FILES_RECHECK_MS, so a
 * rotated Redis CA or client certificate is used without a restart, like an environment's
 * `caFile` (README "Redis over TLS"). A file missing for a moment, or one that cannot be used (no
 * certificate, a key that is not the certificate's yet), leaves the last good one in use.
 */
@Injectable()
export class RedisTlsFilesWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  private readonly task: PeriodicTask | undefined;

  constructor(
    @Inject(REDIS_TLS) private readonly tls: RedisTls | null,
    tasks: PeriodicTasks,
  ) {
    if (tls?.watchesFiles)
      this.task = tasks.create('redis TLS files check', REDIS_TLS_FILES_RECHECK_MS, () =>
        this.check(),
      );
  }

  onApplicationBootstrap(): void {
    this.task?.start();
  }

  onApplicationShutdown(): void {
    this.task?.stop();
  }

  check(): void {
    if (!this.tls) return;
    const { ca, clientCertificate } = this.tls.recheck();
    this.report(ca, 'REDIS_TLS_CA_FILE');
    this.report(clientCertificate, 'REDIS_TLS_CERT_FILE');
  }

  private report(check: CaBundleCheck, field: string): void {
    if (check === 'changed') {
      this.logger.log({ msg: `${field} changed; new Redis connections use it` });
    } else if (check !== 'unchanged') {
      this.logger.warn({
        msg: `${field} cannot be used; the previous one stays`,
        reason: check.unusable,
      });
    }
  }
}
