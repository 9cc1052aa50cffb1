import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfiguration } from '@app/config';
import {
  createTokenVendorApp,
  listenTokenVendor,
  type HttpServerTimeouts,
} from '@app/token-vendor';
import type { Clock } from '@app/clock';
import {
  secretPathOf,
  serviceEnvironment,
  testEncryptionKeys,
  writeServiceConfig,
  type ServiceConfigSpec,
  type StoreSettings,
} from './config';
import { startFleet, type Fleet, type FleetOptions } from './fleet';
import { startReplica, type Replica } from './process';

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

/** What every instance takes, wherever it runs. */
interface InstanceOptions extends Partial<ServiceConfigSpec>, Partial<StoreSettings> {
  /**
   * A configuration file the test wrote itself (writeServiceConfig) and keeps; otherwise
   * `environments`, `clients` and `callers` are written to a temporary folder removed on close.
   */
  configPath?: string;
  logLevel?: string;
  /** More environment variables (TRUSTED_PROXIES, OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
  env?: NodeJS.ProcessEnv;
}

/** The service in this Jest worker, built exactly as main.ts builds it (same loader, same app factory). */
export interface InProcessOptions extends InstanceOptions {
  run?: 'in-process';
  clock?: Clock;
  /** Proactive refresh and start-up warming (default on). */
  scheduler?: boolean;
  /** Shorter HTTP server timeouts, for tests of them. */
  httpTimeouts?: Partial<HttpServerTimeouts>;
}

/** The production entry point built by global-setup, `node dist/apps/token-vendor/main.js`, as a child process. */
export interface ProcessOptions extends InstanceOptions {
  run: 'process';
  /** Default: a free loopback port. */
  port?: number;
  /** A name for messages (default `replica-<port>`). */
  name?: string;
}

export interface InProcessService {
  url: string;
  port: number;
  /** The Prometheus listener (`METRICS_PORT`): `${metricsUrl}/metrics`. */
  metricsUrl: string;
  app: NestFastifyApplication;
  logs: CapturedLogs;
  /** The folder of the configuration file. */
  dir: string;
  configPath: string;
  keyPrefix: string;
  encryptionKeys: string;
  /** The secret file writeServiceConfig wrote for a client (tests rotate it there). */
  secretPath(client: { clientId: string; environment: string }): string;
  close(): Promise<void>;
}

/**
 * The tests' one way to start the service, on 127.0.0.1 with free ports:
 * - in this Jest worker (default, `run: 'in-process'`): the app factory of main.ts, every log
 *   line captured; the test can inject a clock;
 * - as a built process (`run: 'process'`): the production entry point, for signals, exit codes
 *   and process death;
 * - as a fleet of processes on one Redis (`run: 'fleet'`, see FleetOptions).
 */
export function startService(options: InProcessOptions): Promise<InProcessService>;
export function startService(options: ProcessOptions): Promise<Replica>;
export function startService(options: FleetOptions): Promise<Fleet>;
export function startService(
  options: InProcessOptions | ProcessOptions | FleetOptions,
): Promise<InProcessService | Replica | Fleet> {
  if (options.run === 'fleet') return startFleet(options);
  if (options.run === 'process') return startProcess(options);
  return startInProcess(options);
}

/** The configuration file (written unless the test gave its own) and the environment of one instance. */
function prepare(options: InstanceOptions): {
  dir: string;
  configPath: string;
  env: NodeJS.ProcessEnv;
  store: StoreSettings;
  /** Removes what was written for this instance (nothing when the test gave its configuration). */
  cleanUp(): void;
} {
  const store: StoreSettings = {
    redis: options.redis,
    keyPrefix: options.keyPrefix ?? `tv-test-${randomUUID()}:`,
    encryptionKeys: options.encryptionKeys ?? testEncryptionKeys(),
  };
  const secretEnv: NodeJS.ProcessEnv = {};
  let dir: string;
  let configPath: string;
  let cleanUp = (): void => undefined;
  if (options.configPath !== undefined) {
    configPath = options.configPath;
    dir = dirname(configPath);
  } else {
    const { environments, clients, callers, refresh } = options;
    if (!environments || !clients || !callers)
      throw new Error('startService: give configPath, or environments, clients and callers');
    const tmp = mkdtempSync(join(tmpdir(), 'token-vendor-test-'));
    dir = tmp;
    configPath = writeServiceConfig(
      join(dir, 'config.yaml'),
      { environments, clients, callers, refresh },
      secretEnv,
    );
    cleanUp = () => rmSync(tmp, { recursive: true, force: true });
  }
  const env = {
    ...serviceEnvironment(configPath, store, options.logLevel),
    ...secretEnv,
    ...options.env,
  };
  return { dir, configPath, env, store, cleanUp };
}

async function startInProcess(options: InProcessOptions): Promise<InProcessService> {
  const { dir, configPath, env, store, cleanUp } = prepare(options);
  const logs = new CapturedLogs();
  let app: NestFastifyApplication | undefined;
  try {
    app = await createTokenVendorApp({
      configuration: loadConfiguration(env),
      clock: options.clock,
      logStream: logs,
      refresh: options.scheduler,
      httpTimeouts: options.httpTimeouts,
    });
    const built = app;
    const { api, metrics } = await listenTokenVendor(built, {
      port: 0,
      metricsPort: 0,
      host: '127.0.0.1',
    });
    return {
      url: `http://127.0.0.1:${api.port}`,
      port: api.port,
      metricsUrl: `http://127.0.0.1:${metrics.port}`,
      app: built,
      logs,
      dir,
      configPath,
      keyPrefix: store.keyPrefix,
      encryptionKeys: store.encryptionKeys,
      secretPath: (client) => secretPathOf(dir, client),
      async close() {
        await built.close();
        cleanUp();
      },
    };
  } catch (e) {
    // A start refused during bootstrap (e.g. discovery): release what was built, then report.
    await app?.close().catch(() => undefined);
    cleanUp();
    throw e;
  }
}

async function startProcess(options: ProcessOptions): Promise<Replica> {
  const { env, cleanUp } = prepare(options);
  try {
    const replica = await startReplica({ env, port: options.port, name: options.name });
    void replica.exited.then(cleanUp);
    return replica;
  } catch (e) {
    cleanUp();
    throw e;
  }
}
