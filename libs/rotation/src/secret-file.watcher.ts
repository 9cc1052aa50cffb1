import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { SecretRotationService } from './secret-rotation.service';

/**
 * How often secret files are re-read. Polling (re-reading content and comparing) is what sees
 * a Kubernetes Secret update: the kubelet swaps a `..data` symlink to a new timestamped
 * folder, which a watch on the file itself misses. Well under the 10 s the contract allows.
 */
export const SECRET_POLL_INTERVAL_MS = 2_000;

@Injectable()
export class SecretFileWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('SecretFileWatcher');
  private timer?: NodeJS.Timeout;
  private checking = false;

  constructor(private readonly rotation: SecretRotationService) {}

  onApplicationBootstrap(): void {
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
      await this.rotation.checkAll();
    } catch (e) {
      this.logger.error({ err: { message: (e as Error).message } }, 'secret check failed');
    } finally {
      this.checking = false;
    }
  }
}
