/** The validated, read-only configuration the rest of the service sees. */

export type AuthMethod = 'client_secret_post' | 'client_secret_basic';

export interface EnvironmentConfig {
  readonly name: string;
  readonly tokenUrl: string;
  readonly timeoutMs: number;
}

export type SecretSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'env'; readonly name: string };

export interface ClientConfig {
  /** `environment/clientId`: the identity of a client everywhere in the service. */
  readonly key: string;
  readonly clientId: string;
  readonly environment: string;
  readonly secretSource: SecretSource;
  readonly scope?: string;
  readonly authMethod: AuthMethod;
}

/** One ACL entry of a caller: a client id in any environment, one environment's client, or all. */
export type AclEntry =
  | { readonly kind: 'any' }
  | { readonly kind: 'client'; readonly clientId: string }
  | {
      readonly kind: 'environment-client';
      readonly environment: string;
      readonly clientId: string;
    };

export interface CallerConfig {
  readonly name: string;
  /** SHA-256 digests (32 bytes each) of the caller's keys; several while a key is rotated. */
  readonly keyDigests: readonly Buffer[];
  /**
   * Absolute path of the caller's `keySha256File`, if any: its digests are already in
   * `keyDigests`; the path is kept so a change of the file (a Secret update) triggers a reload.
   */
  readonly keyDigestFile?: string;
  readonly clients: readonly AclEntry[];
  readonly admin: boolean;
}

export interface RefreshConfig {
  readonly ratio: number;
  readonly minTtlSeconds: number;
  /** A downstream rejection forces at most one refresh per client per this long, fleet-wide. */
  readonly minRejectionIntervalSeconds: number;
}

export interface ServiceConfig {
  readonly environments: ReadonlyMap<string, EnvironmentConfig>;
  readonly clients: readonly ClientConfig[];
  readonly callers: readonly CallerConfig[];
  readonly refresh: RefreshConfig;
}

/** AUTH/ACL and TLS for Redis (standalone URLs may also carry user, password and rediss://). */
export interface RedisConnectionOptions {
  readonly username?: string;
  readonly password?: string;
  /** Credentials of the Sentinel processes themselves, when they require AUTH. */
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
  /** TLS to Redis (and to Sentinels); `caFile` adds a CA to trust. */
  readonly tls?: { readonly caFile?: string };
}

export type RedisSettings = (
  | { readonly mode: 'standalone'; readonly url: string }
  | {
      readonly mode: 'sentinel';
      readonly sentinels: readonly { host: string; port: number }[];
      readonly name: string;
    }
  | { readonly mode: 'cluster'; readonly nodes: readonly { host: string; port: number }[] }
) & { readonly connection?: RedisConnectionOptions };

export interface EncryptionKey {
  readonly kid: string;
  readonly key: Buffer;
}

/** What the process environment says (contract §4). */
export interface RuntimeSettings {
  readonly port: number;
  readonly host: string;
  readonly configPath: string;
  readonly redis?: RedisSettings;
  readonly keyPrefix: string;
  /** The first encrypts; all decrypt. Empty only when no Redis is configured. */
  readonly encryptionKeys: readonly EncryptionKey[];
  readonly logLevel: string;
}
