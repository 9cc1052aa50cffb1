import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  ConfigError,
  ConfigService,
  loadSnapshot,
  type ClientConfig,
  type ConfigSnapshot,
} from '@app/config';
import { FLEET_CHANNEL, type FleetAck, type FleetChannel } from '@app/token-store';
import { RefreshScheduler, TokenCache, TokenFetcher } from '@app/tokens';
import { SecretRotationService } from './secret-rotation.service';

/** A reload of the whole fleet: this replica's own result (or refusal) and the others' answers. */
export interface FleetReload {
  local: ReloadResult | ConfigError;
  replicas: FleetAck[];
}

export interface ReloadResult {
  clients: number;
  callers: number;
  added: string[];
  removed: string[];
  changed: string[];
}

/**
 * Reloads configuration and secrets (POST /admin/reload, SIGHUP). The new file is validated
 * whole before anything changes; an invalid file is refused with its problems and the running
 * configuration stays. A changed secret of an existing client is not adopted blindly: it
 * becomes a rotation candidate, tried against the IdP first.
 */
@Injectable()
export class ConfigReloader implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ConfigReload');
  private readonly onSighup = (): void => {
    void this.reloadFleet();
  };

  constructor(
    private readonly config: ConfigService,
    private readonly cache: TokenCache,
    private readonly fetcher: TokenFetcher,
    private readonly scheduler: RefreshScheduler,
    private readonly rotation: SecretRotationService,
    @Inject(FLEET_CHANNEL) private readonly fleet: FleetChannel,
  ) {}

  onApplicationBootstrap(): void {
    process.on('SIGHUP', this.onSighup);
    // Another replica was asked to reload (admin API or SIGHUP): each reads its own files.
    this.fleet.onRequest('reload', () => {
      try {
        const result = this.reload();
        return Promise.resolve({
          outcome: 'reloaded',
          detail: `${result.clients} clients, ${result.callers} callers`,
        });
      } catch (e) {
        return Promise.resolve({ outcome: 'refused', detail: (e as Error).message });
      }
    });
  }

  /**
   * Reloads this replica, then asks every other replica to reload its own files; resolves with
   * what each did. Never throws for an invalid file: the refusal is the local result.
   */
  async reloadFleet(env: NodeJS.ProcessEnv = process.env): Promise<FleetReload> {
    let local: ReloadResult | ConfigError;
    try {
      local = this.reload(env);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      local = e;
    }
    const replicas = await this.fleet.request({ type: 'reload' }).catch((e: Error) => {
      this.logger.warn({ msg: 'fleet reload not sent', err: { message: e.message } });
      return [] as FleetAck[];
    });
    return { local, replicas };
  }

  onApplicationShutdown(): void {
    process.off('SIGHUP', this.onSighup);
  }

  /** Throws the ConfigError (naming every bad field) when the new configuration is invalid. */
  reload(env: NodeJS.ProcessEnv = process.env): ReloadResult {
    let next: ConfigSnapshot;
    try {
      next = loadSnapshot(this.config.runtime.configPath, env);
    } catch (e) {
      this.logger.error({
        msg: 'configuration reload refused; the running configuration stays',
        reason: (e as Error).message,
      });
      throw e;
    }
    const before = new Map(this.config.service.clients.map((c) => [c.key, c]));
    const after = new Map(next.service.clients.map((c) => [c.key, c]));
    const added = [...after.keys()].filter((k) => !before.has(k));
    const removed = [...before.keys()].filter((k) => !after.has(k));
    const changed = [...after.keys()].filter(
      (k) => before.has(k) && !sameUpstream(before.get(k)!, after.get(k)!, this.config, next),
    );

    // Existing clients keep the secret that works; a different one on disk is a candidate.
    const secrets = new Map(next.secrets);
    const candidates: [ClientConfig, string][] = [];
    for (const [key, client] of after) {
      const inUse = this.config.secretFor(key);
      const onDisk = next.secrets.get(key);
      if (
        before.has(key) &&
        inUse !== undefined &&
        onDisk !== undefined &&
        inUse !== onDisk &&
        !changed.includes(key)
      ) {
        secrets.set(key, inUse);
        candidates.push([client, onDisk]);
      }
    }
    this.config.replace({ service: next.service, secrets });

    for (const key of removed) {
      this.cache.forget(before.get(key)!);
      this.fetcher.clearRejection(key);
    }
    for (const key of changed) {
      void this.cache.discard(after.get(key)!);
      this.fetcher.clearRejection(key);
    }
    this.rotation.retain(new Set(after.keys()));
    for (const [client, secret] of candidates) void this.rotation.offer(client, secret);
    this.scheduler.warmAll();

    const result = {
      clients: next.service.clients.length,
      callers: next.service.callers.length,
      added,
      removed,
      changed,
    };
    this.logger.log({ msg: 'configuration reloaded', ...result });
    return result;
  }
}

/** Whether a client still talks to the same IdP the same way (else its token no longer fits). */
function sameUpstream(
  a: ClientConfig,
  b: ClientConfig,
  current: ConfigService,
  next: ConfigSnapshot,
): boolean {
  const envA = current.service.environments.get(a.environment);
  const envB = next.service.environments.get(b.environment);
  return a.scope === b.scope && a.authMethod === b.authMethod && envA?.tokenUrl === envB?.tokenUrl;
}
