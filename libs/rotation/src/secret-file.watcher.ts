import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { stat } from 'node:fs/promises';
import { ConfigService, fileIdentity } from '@app/config';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import { ConfigReloader } from './config-reloader';
import { SecretRotationService } from './secret-rotation.service';

/**
 * How often secret files are re-read. Polling (re-reading content and comparing) is what sees
 * a Kubernetes Secret update: the kubelet swaps a `..data` symlink to a new timestamped
 * folder, which a watch on the file itself misses (README "Rotation and reload").
 */
export const SECRET_POLL_INTERVAL_MS = 2_000;

/**
 * Polls the mounted files: client secrets (through SecretRotationService, tried before use) and
 * callers' `keySha256File`s. A changed digest file re-reads the callers' digest files alone
 * (ConfigReloader.reloadCallerKeys), so a revoked key stops working within one poll even while
 * another part of the configuration is invalid. A refused read (a bad line) keeps the running
 * callers and is tried again on every poll until it succeeds; each distinct refusal is logged once.
 */
@Injectable()
export class SecretFileWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('SecretFileWatcher');
  private readonly poller: PeriodicTask;
  private checking = false;
  private checkingCallerKeys = false;
  /** Identity (inode, size, mtime) of each caller key file when last checked. */
  private keyFileIdentities = new Map<string, string>();
  /** The caller key files were refused last time: try again on the next poll, changed or not. */
  private callerKeysPending = false;
  /** The last refusal logged, so a refusal that lasts is logged once, not every poll. */
  private lastRefusal?: string;

  constructor(
    private readonly rotation: SecretRotationService,
    private readonly config: ConfigService,
    private readonly reloader: ConfigReloader,
    tasks: PeriodicTasks,
  ) {
    this.poller = tasks.create('secret file poll', SECRET_POLL_INTERVAL_MS, () => this.check());
  }

  async onApplicationBootstrap(): Promise<void> {
    // The files as loaded at start are the baseline: only a later change triggers a reload.
    await this.checkCallerKeyFiles();
    this.reloader.warnAboutCallersWithoutCredentials();
    this.poller.start();
  }

  onApplicationShutdown(): void {
    this.poller.stop();
  }

  /**
   * One poll. The caller keys and the client secrets are checked under separate guards: a
   * secret candidate being tried against a slow IdP must not delay a caller key revocation.
   */
  async check(): Promise<void> {
    await Promise.all([this.checkCallerKeysOnce(), this.checkSecretsOnce()]);
  }

  private async checkCallerKeysOnce(): Promise<void> {
    if (this.checkingCallerKeys) return;
    this.checkingCallerKeys = true;
    try {
      await this.checkCallerKeyFiles();
    } catch (e) {
      this.logger.error({ err: { message: (e as Error).message } }, 'caller key check failed');
    } finally {
      this.checkingCallerKeys = false;
    }
  }

  private async checkSecretsOnce(): Promise<void> {
    if (this.checking) return; // a slow IdP must not pile up checks
    this.checking = true;
    try {
      await this.rotation.checkAll();
    } catch (e) {
      this.logger.error({ err: { message: (e as Error).message } }, 'secret check failed');
    } finally {
      this.checking = false;
    }
  }

  /**
   * Re-reads the callers' key files when one changed since the last check (a `stat` per file,
   * no read: the `..data` swap gives the file a new inode), or when the last read was refused.
   * A file seen for the first time is only recorded: the load that put it in the configuration
   * has just read it. Returns whether a re-read was tried.
   */
  async checkCallerKeyFiles(): Promise<boolean> {
    const paths = new Set(
      this.config.service.callers.flatMap((c) =>
        c.keyDigestFile === undefined ? [] : [c.keyDigestFile],
      ),
    );
    const identities = new Map<string, string>();
    const changed: string[] = [];
    await Promise.all(
      [...paths].map(async (path) => {
        const identity = await identityOf(path);
        const previous = this.keyFileIdentities.get(path);
        identities.set(path, identity);
        if (previous !== undefined && previous !== identity) changed.push(path);
      }),
    );
    this.keyFileIdentities = identities;
    if (changed.length === 0 && !this.callerKeysPending) return false;
    if (changed.length > 0) {
      this.logger.log({
        msg: 'caller key file changed; re-reading the caller keys',
        files: changed,
      });
    }
    try {
      this.reloader.reloadCallerKeys();
      this.callerKeysPending = false;
      this.lastRefusal = undefined;
      this.reloader.warnAboutCallersWithoutCredentials();
    } catch (e) {
      this.callerKeysPending = true;
      const reason = (e as Error).message;
      if (reason !== this.lastRefusal) {
        this.lastRefusal = reason;
        this.logger.error({
          msg: 'caller key files refused; the running callers stay (retried every poll)',
          reason,
        });
      }
    }
    return true;
  }
}

async function identityOf(path: string): Promise<string> {
  try {
    return fileIdentity(await stat(path));
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}
