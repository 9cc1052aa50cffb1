import type { ClientRegistry } from './client-registry';
import type { FaultInjector } from './fault-injection';
import type { JwtSigner } from './jwt-signer';
import type { SandboxStatsRecorder } from './sandbox-stats';
import type { SandboxLogEntry } from './types';
import type { WorkloadIssuer } from './workload-issuer';

/** Settings that can change while the sandbox runs. */
export interface SandboxSettings {
  /** The sandbox's own base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  issuer: string;
  audience: string;
  expiresIn: number;
  /** Client authentication methods accepted and advertised. */
  authMethods: readonly string[];
  openidConfiguration: boolean;
}

/** Everything the request handlers share; one per running sandbox. */
export interface SandboxContext {
  signer: JwtSigner;
  workloads: WorkloadIssuer;
  clients: ClientRegistry;
  faults: FaultInjector;
  stats: SandboxStatsRecorder;
  settings: SandboxSettings;
  log: (entry: SandboxLogEntry) => void;
  /** Resolves true after `ms`, or false as soon as the sandbox closes (so 'slow' never outlives it). */
  sleep(ms: number): Promise<boolean>;
}

/** Timers that close() can cancel, so no 'slow' answer keeps jest (or the process) alive. */
export class CancellableSleeper {
  private readonly pending = new Map<NodeJS.Timeout, (done: boolean) => void>();
  private closed = false;

  sleep(ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        resolve(true);
      }, ms);
      this.pending.set(timer, resolve);
    });
  }

  cancelAll(): void {
    this.closed = true;
    for (const [timer, resolve] of this.pending) {
      clearTimeout(timer);
      resolve(false);
    }
    this.pending.clear();
  }
}
