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
  callersWithoutCredentials,
  loadSnapshot,
  readCallerKeyFiles,
  requestShapeOf,
  type ClientConfig,
  type ConfigSnapshot,
} from '@app/config';
import { FLEET_CHANNEL, type FleetAck, type FleetChannel } from '@app/token-store';
import { RefreshScheduler, TokenSource } from '@app/tokens';
import { IdpDiscovery } from '@app/upstream';
import { SecretRotationService } from './secret-rotation.service';

export interface CallerKeysResult {
  /** Callers whose digests changed. */
  changed: string[];
  /** Callers left with no key and no workload identity: refused (401) until given one. */
  withoutCredentials: string[];
}

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
    private readonly tokens: TokenSource,
    private readonly scheduler: RefreshScheduler,
    private readonly rotation: SecretRotationService,
    @Inject(FLEET_CHANNEL) private readonly fleet: FleetChannel,
    private readonly discovery: IdpDiscovery,
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
      // The start's discovery check too: a client whose method the IdP does not list would only
      // be refused by the IdP after its working token was dropped (README "Identity providers").
      const problems = this.discovery.problemsOf(next.service);
      if (problems.length > 0) throw new ConfigError(this.config.runtime.configPath, problems);
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

    for (const key of removed) this.tokens.forget(before.get(key)!);
    for (const key of changed) void this.tokens.discard(after.get(key)!);
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
    this.warnAboutCallersWithoutCredentials();
    return result;
  }

  /**
   * Re-reads the callers' `keySha256File`s alone and applies them to the running callers: the
   * configuration file and client secrets are not read, so a revocation (a digest removed, the
   * file emptied or deleted) applies even while an unrelated part of the configuration is
   * invalid (README "Rotation and reload"). Throws the ConfigError (digest files with bad lines,
   * a key given to two callers); the running callers then stay. Logs nothing on refusal: the
   * caller (SecretFileWatcher) retries every poll and logs each distinct refusal once.
   */
  reloadCallerKeys(): CallerKeysResult {
    const service = this.config.service;
    const next = readCallerKeyFiles(service, this.config.runtime.configPath);
    const changed = next.callers
      .filter((caller, i) => !sameDigests(caller.keyDigests, service.callers[i].keyDigests))
      .map((caller) => caller.name);
    this.config.replaceCallers(next.callers);
    const result = { changed, withoutCredentials: callersWithoutCredentials(next) };
    this.logger.log({ msg: 'caller keys reloaded', ...result });
    return result;
  }

  /** A caller nobody can authenticate is most likely a mistake (or a revocation): say so. */
  warnAboutCallersWithoutCredentials(): void {
    const names = callersWithoutCredentials(this.config.service);
    if (names.length === 0) return;
    this.logger.warn({
      msg: 'callers without any key or workload identity are refused (401)',
      callers: names,
    });
  }
}

function sameDigests(a: readonly Buffer[], b: readonly Buffer[]): boolean {
  return a.length === b.length && a.every((digest, i) => digest.equals(b[i]));
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
  if (!envA || !envB) return false;
  return JSON.stringify(requestShapeOf(a, envA)) === JSON.stringify(requestShapeOf(b, envB));
}
