import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { requireTestRedisUrl } from './redis-server';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A fresh encryption key per run: nothing committed, nothing reused. */
export function testEncryptionKeys(): string {
  return `t1:${randomBytes(32).toString('base64')}`;
}

export interface TestClient {
  clientId: string;
  environment: string;
  /**
   * The secret, written to a file beside the configuration (`secretPathOf`); for
   * `authMethod: private_key_jwt`, the private key (PEM or JWK), written to `privateKeyFile`.
   */
  secret?: string;
  /**
   * `authMethod: private_key_jwt`: the key's certificate (PEM), written to `certificateFile`
   * beside the key (certificatePathOf).
   */
  certificate?: string;
  /** A secret file the test keeps itself (e.g. in a mounted-Secret volume): written as given, never created. */
  secretFile?: string;
  scope?: string;
  /** tls_client_auth / self_signed_tls_client_auth: `secret` is unused; give clientCertFile and clientKeyFile in `fields`. */
  authMethod?:
    | 'client_secret_post'
    | 'client_secret_basic'
    | 'private_key_jwt'
    | 'tls_client_auth'
    | 'self_signed_tls_client_auth';
  /** Where `secret` goes: a file (default) or an environment variable. */
  via?: 'file' | 'env';
  /** Further fields of the client's entry, written verbatim (audience, resource, keyId, or invalid ones). */
  fields?: Record<string, unknown>;
}

/** An environment's entry, as written in the file. */
export interface TestEnvironment {
  /** One of tokenUrl and issuer (discovery). */
  tokenUrl?: string;
  issuer?: string;
  timeoutMs?: number;
  caFile?: string;
  allowInsecureHttp?: boolean;
}

export interface TestCaller {
  name: string;
  /** Caller keys in clear: the file holds their SHA-256 digests, as in production. */
  keys: string[];
  clients: string[];
  admin?: boolean;
}

/** What a test says about the service's configuration file (README "Configuration"). */
export interface ServiceConfigSpec {
  environments: Record<string, TestEnvironment>;
  clients: TestClient[];
  callers: TestCaller[];
  refresh?: { ratio?: number; minTtlSeconds?: number; minRejectionIntervalSeconds?: number };
}

/** Where writeServiceConfig puts a client's secret: `<configuration's folder>/secrets/<env>--<id>` (tests rotate it there). */
export function secretPathOf(
  dir: string,
  client: { clientId: string; environment: string },
): string {
  return join(dir, 'secrets', `${client.environment}--${client.clientId}`);
}

/** Where writeServiceConfig puts a private_key_jwt client's `certificate`: beside its key, `.crt`. */
export function certificatePathOf(
  dir: string,
  client: { clientId: string; environment: string },
): string {
  return `${secretPathOf(dir, client)}.crt`;
}

/**
 * The tests' one configuration builder: writes `spec` as YAML to `path` and each client's
 * secret to its file beside it (secretPathOf, mode 0600), and returns `path`. Written again to
 * the same path, it is what an operator's edit before a reload looks like. Secrets given
 * `via: 'env'` get unique variable names, set in `env` and in process.env, so a reload (which
 * reads the process's environment) finds them too.
 */
export function writeServiceConfig(
  path: string,
  spec: ServiceConfigSpec,
  env: NodeJS.ProcessEnv = {},
): string {
  const dir = dirname(path);
  const envTag = randomBytes(4).toString('hex').toUpperCase();
  const clients = spec.clients.map((c, i) => {
    const entry: Record<string, unknown> = { clientId: c.clientId, environment: c.environment };
    if (c.secretFile !== undefined) {
      entry.secretFile = c.secretFile;
    } else if (
      c.secret === undefined ||
      c.authMethod === 'tls_client_auth' ||
      c.authMethod === 'self_signed_tls_client_auth'
    ) {
      // no secret: the certificate and key files are the test's own (fields)
    } else if (c.via === 'env') {
      const name = `TEST_SECRET_${envTag}_${i}`;
      env[name] = c.secret;
      process.env[name] = c.secret;
      entry.secretEnv = name;
    } else {
      const file = secretPathOf(dir, c);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${c.secret}\n`, { mode: 0o600 });
      entry[c.authMethod === 'private_key_jwt' ? 'privateKeyFile' : 'secretFile'] = file;
    }
    if (c.certificate !== undefined) {
      const file = certificatePathOf(dir, c);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, c.certificate);
      entry.certificateFile = file;
    }
    if (c.scope) entry.scope = c.scope;
    if (c.authMethod) entry.authMethod = c.authMethod;
    return { ...entry, ...c.fields };
  });
  const config = {
    environments: spec.environments,
    clients,
    callers: spec.callers.map((c) => ({
      name: c.name,
      keySha256: c.keys.map(sha256Hex),
      clients: c.clients,
      admin: c.admin ?? false,
    })),
    refresh: { ratio: 0.75, minTtlSeconds: 30, ...spec.refresh },
  };
  writeFileSync(path, stringify(config));
  return path;
}

/** How the service reaches its store (README "Configuration"): the environment variables of one instance. */
export interface StoreSettings {
  /**
   * Redis with the key prefix below: the suite's shared Redis (`true`), a URL, or environment
   * variables (REDIS_SENTINELS + REDIS_SENTINEL_NAME, REDIS_CLUSTER_NODES); the in-memory store
   * when absent or false.
   */
  redis?: boolean | string | Record<string, string>;
  /** Shared by instances that play replicas of one fleet (they must read each other's values). */
  keyPrefix: string;
  encryptionKeys: string;
}

/** The environment variables of one instance: its configuration file, log level and store. */
export function serviceEnvironment(
  configPath: string,
  store: StoreSettings,
  logLevel = 'debug',
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { TOKEN_VENDOR_CONFIG: configPath, LOG_LEVEL: logLevel };
  if (store.redis) {
    if (typeof store.redis === 'object') Object.assign(env, store.redis);
    else env.REDIS_URL = typeof store.redis === 'string' ? store.redis : requireTestRedisUrl();
    env.REDIS_KEY_PREFIX = store.keyPrefix;
    env.TOKEN_VENDOR_ENCRYPTION_KEYS = store.encryptionKeys;
  }
  return env;
}
