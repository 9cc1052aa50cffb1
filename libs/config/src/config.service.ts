import type { CallerConfig, ClientConfig, RuntimeSettings, ServiceConfig } from './config.types';

/** One consistent view of configuration + secrets; replaced whole on reload, never mutated. */
export interface ConfigSnapshot {
  readonly service: ServiceConfig;
  /** Secrets by client key (`environment/clientId`). */
  readonly secrets: ReadonlyMap<string, string>;
}

/**
 * The typed, read-only configuration of the running service. Readers always see one whole
 * snapshot; `replace` swaps it atomically (reload).
 */
export class ConfigService {
  private snapshot: ConfigSnapshot;
  private byClientId: Map<string, ClientConfig[]>;
  private byKey: Map<string, ClientConfig>;

  constructor(
    readonly runtime: RuntimeSettings,
    snapshot: ConfigSnapshot,
  ) {
    this.snapshot = snapshot;
    this.byClientId = indexByClientId(snapshot.service.clients);
    this.byKey = new Map(snapshot.service.clients.map((c) => [c.key, c]));
  }

  get service(): ServiceConfig {
    return this.snapshot.service;
  }

  get current(): ConfigSnapshot {
    return this.snapshot;
  }

  /** Every configured client with this id, one per environment it exists in. */
  clientsWithId(clientId: string): readonly ClientConfig[] {
    return this.byClientId.get(clientId) ?? [];
  }

  /** The client with this key (`environment/clientId`), if configured. */
  clientByKey(clientKey: string): ClientConfig | undefined {
    return this.byKey.get(clientKey);
  }

  secretFor(clientKey: string): string | undefined {
    return this.snapshot.secrets.get(clientKey);
  }

  /** Puts a new secret in use for one client (after the IdP accepted it). */
  replaceSecret(clientKey: string, secret: string): void {
    const secrets = new Map(this.snapshot.secrets);
    secrets.set(clientKey, secret);
    this.snapshot = { service: this.snapshot.service, secrets };
  }

  /** Puts new caller definitions in use (their key files re-read); everything else stays. */
  replaceCallers(callers: readonly CallerConfig[]): void {
    this.snapshot = {
      service: { ...this.snapshot.service, callers },
      secrets: this.snapshot.secrets,
    };
  }

  replace(snapshot: ConfigSnapshot): void {
    this.byClientId = indexByClientId(snapshot.service.clients);
    this.byKey = new Map(snapshot.service.clients.map((c) => [c.key, c]));
    this.snapshot = snapshot;
  }
}

function indexByClientId(clients: readonly ClientConfig[]): Map<string, ClientConfig[]> {
  const index = new Map<string, ClientConfig[]>();
  for (const client of clients) {
    const list = index.get(client.clientId) ?? [];
    list.push(client);
    index.set(client.clientId, list);
  }
  return index;
}
