import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { stat } from 'node:fs/promises';
import { ConfigService } from '@app/config';
import { ConfigReloader } from './config-reloader';
import { SecretRotationService } from './secret-rotation.service';

/**
 * How often secret files are re-read. Polling (re-reading content and comparing) is what sees
 * a Kubernetes Secret update: the kubelet swaps a `..data` symlink to a new timestamped
 * folder, which a watch on the file itself misses. Well under the 10 s the contract allows.
 */
export const SECRET_POLL_INTERVAL_MS = 2_000;

/**
 * Polls the mounted files: client secrets (through SecretRotationService, tried before use) and
 * callers' `keySha256File`s. A changed digest file reloads the whole configuration
 * (ConfigReloader): validated whole, swapped atomically, refused (and logged) when invalid.
 */
@Injectable()
export class SecretFileWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('SecretFileWatcher');
  private timer?: NodeJS.Timeout;
  private checking = false;
  /** Identity (inode, size, mtime) of each caller key file when last checked. */
  private keyFileIdentities = new Map<string, string>();

  constructor(
    private readonly rotation: SecretRotationService,
    private readonly config: ConfigService,
    private readonly reloader: ConfigReloader,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // The files as loaded at start are the baseline: only a later change triggers a reload.
    await this.checkCallerKeyFiles();
    this.timer = setInterval(() => void this.check(), SECRET_POLL_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.checking) return; // a slow IdP must not pile up checks
    this.checking = true;
    try {
      await this.checkCallerKeyFiles();
      await this.rotation.checkAll();
    } catch (e) {
      this.logger.error({ err: { message: (e as Error).message } }, 'secret check failed');
    } finally {
      this.checking = false;
    }
  }

  /**
   * Reloads the configuration when a caller's key file changed since the last check (a `stat`
   * per file, no read: the `..data` swap gives the file a new inode). A file seen for the first
   * time is only recorded: the load that put it in the configuration has just read it.
   * Returns whether a reload was tried.
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
        const identity = await fileIdentity(path);
        const previous = this.keyFileIdentities.get(path);
        identities.set(path, identity);
        if (previous !== undefined && previous !== identity) changed.push(path);
      }),
    );
    // Recorded before reloading: a refused file is not retried every poll, only when it changes.
    this.keyFileIdentities = identities;
    if (changed.length === 0) return false;
    this.logger.log({
      msg: 'caller key file changed; reloading the configuration',
      files: changed,
    });
    try {
      this.reloader.reload();
    } catch {
      // already logged by the reloader; the running configuration stays
    }
    return true;
  }
}

async function fileIdentity(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (e) {
    return `missing:${(e as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}
