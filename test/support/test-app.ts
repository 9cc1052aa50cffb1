import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { stringify } from 'yaml';
import { loadConfiguration } from '@app/config';
import {
  createTokenVendorApp,
  listenTokenVendor,
  type HttpServerTimeouts,
} from '@app/token-vendor';
import type { Clock } from '@app/clock';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Collects every log line the service writes, parsed, for assertions and secret scans. */
export class CapturedLogs extends Writable {
  readonly lines: string[] = [];

  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.lines.push(line);
    done();
  }

  entries(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  audit(): Record<string, unknown>[] {
    return this.entries().filter((e) => e.audit === true);
  }
}

export interface TestClient {
  clientId: string;
  environment: string;
  /** The secret; for `authMethod: private_key_jwt`, the private key (PEM or JWK), written to `privateKeyFile`. */
  secret: string;
  scope?: string;
  /** tls_client_auth / self_signed_tls_client_auth: `secret` is unused; give clientCertFile and clientKeyFile in `fields`. */
  authMethod?:
    | 'client_secret_post'
    | 'client_secret_basic'
    | 'private_key_jwt'
    | 'tls_client_auth'
    | 'self_signed_tls_client_auth';
  /** Where the secret comes from: a file (default) or an environment variable. */
  via?: 'file' | 'env';
  /** Further fields of the client's entry, as written in the file (audience, resource, keyId, ...). */
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
  keys: string[];
  clients: string[];
  admin?: boolean;
}

export interface TestAppOptions {
  environments: Record<string, TestEnvironment>;
  clients: TestClient[];
  callers: TestCaller[];
  refresh?: { ratio?: number; minTtlSeconds?: number };
  /**
   * Use Redis with a unique key prefix: TEST_REDIS_URL (true), a URL, or environment variables
   * (REDIS_SENTINELS + REDIS_SENTINEL_NAME, REDIS_CLUSTER_NODES); memory otherwise.
   */
  redis?: boolean | string | Record<string, string>;
  /** Shared by apps that play replicas of one fleet (they must read each other's values). */
  encryptionKeys?: string;
  keyPrefix?: string;
  clock?: Clock;
  logLevel?: string;
  /** Proactive refresh and start-up warming (default on). */
  scheduler?: boolean;
  /** More environment variables (TRUSTED_PROXIES, OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
  env?: Record<string, string>;
  /** Shorter HTTP server timeouts, for tests of them. */
  httpTimeouts?: Partial<HttpServerTimeouts>;
}

export interface RunningTestApp {
  url: string;
  /** The Prometheus listener (`METRICS_PORT`): `${metricsUrl}/metrics`. */
  metricsUrl: string;
  app: NestFastifyApplication;
  logs: CapturedLogs;
  dir: string;
  configPath: string;
  keyPrefix: string;
  close(): Promise<void>;
}

/** A fresh encryption key per run: nothing committed, nothing reused. */
export function testEncryptionKeys(): string {
  return `t1:${randomBytes(32).toString('base64')}`;
}

/** Where writeTestConfig puts a client's secret file (tests rotate it there). */
export function secretPathOf(
  dir: string,
  client: { clientId: string; environment: string },
): string {
  return join(dir, 'secrets', `${client.environment}--${client.clientId}`);
}

/**
 * Writes `dir/config.yaml` and the clients' secret files under `dir/secrets`; returns the
 * configuration's path. Secrets given `via: 'env'` get unique variable names, set in `env`
 * and in process.env, so a reload (which reads the process's environment) finds them too.
 */
export function writeTestConfig(
  dir: string,
  options: Pick<TestAppOptions, 'environments' | 'clients' | 'callers' | 'refresh'>,
  env: NodeJS.ProcessEnv,
): string {
  const envTag = randomBytes(4).toString('hex').toUpperCase();
  const clients = options.clients.map((c, i) => {
    const entry: Record<string, unknown> = { clientId: c.clientId, environment: c.environment };
    if (c.authMethod === 'tls_client_auth' || c.authMethod === 'self_signed_tls_client_auth') {
      // the certificate and key files are the test's own (fields)
    } else if (c.via === 'env') {
      const name = `TEST_SECRET_${envTag}_${i}`;
      env[name] = c.secret;
      process.env[name] = c.secret;
      entry.secretEnv = name;
    } else {
      const file = secretPathOf(dir, c);
      writeFileSync(file, `${c.secret}\n`);
      entry[c.authMethod === 'private_key_jwt' ? 'privateKeyFile' : 'secretFile'] = file;
    }
    if (c.scope) entry.scope = c.scope;
    if (c.authMethod) entry.authMethod = c.authMethod;
    return { ...entry, ...c.fields };
  });
  const config = {
    environments: options.environments,
    clients,
    callers: options.callers.map((c) => ({
      name: c.name,
      keySha256: c.keys.map(sha256Hex),
      clients: c.clients,
      admin: c.admin ?? false,
    })),
    refresh: { ratio: 0.75, minTtlSeconds: 30, ...options.refresh },
  };
  const configPath = join(dir, 'config.yaml');
  writeFileSync(configPath, stringify(config));
  return configPath;
}

/**
 * Writes a configuration file and secret files into a temporary folder, builds the service
 * exactly as main.ts does (same loader, same app factory) and listens on 127.0.0.1:0.
 */
export async function startTestApp(options: TestAppOptions): Promise<RunningTestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'token-vendor-test-'));
  mkdirSync(join(dir, 'secrets'));
  const env: NodeJS.ProcessEnv = {};
  const configPath = writeTestConfig(dir, options, env);

  const keyPrefix = options.keyPrefix ?? `tv-test-${randomUUID()}:`;
  env.TOKEN_VENDOR_CONFIG = configPath;
  env.LOG_LEVEL = options.logLevel ?? 'debug';
  if (options.redis) {
    if (typeof options.redis === 'object') Object.assign(env, options.redis);
    else env.REDIS_URL = typeof options.redis === 'string' ? options.redis : requiredTestRedisUrl();
    env.REDIS_KEY_PREFIX = keyPrefix;
    env.TOKEN_VENDOR_ENCRYPTION_KEYS = options.encryptionKeys ?? testEncryptionKeys();
  }
  Object.assign(env, options.env);
  const logs = new CapturedLogs();
  const app = await createTokenVendorApp({
    configuration: loadConfiguration(env),
    clock: options.clock,
    logStream: logs,
    refresh: options.scheduler,
    httpTimeouts: options.httpTimeouts,
  });
  let listening: Awaited<ReturnType<typeof listenTokenVendor>>;
  try {
    listening = await listenTokenVendor(app, { port: 0, metricsPort: 0, host: '127.0.0.1' });
  } catch (e) {
    // A start refused during bootstrap (e.g. discovery): release what was built, then report.
    await app.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const { api, metrics } = listening;
  return {
    url: `http://127.0.0.1:${api.port}`,
    metricsUrl: `http://127.0.0.1:${metrics.port}`,
    app,
    logs,
    dir,
    configPath,
    keyPrefix,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function requiredTestRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the suite through jest (globalSetup)');
  return url;
}
