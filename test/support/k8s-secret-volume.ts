import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { stringify } from 'yaml';
import { loadConfiguration } from '@app/config';
import { createTokenVendorApp } from '@app/token-vendor';
import {
  CapturedLogs,
  requiredTestRedisUrl,
  sha256Hex,
  testEncryptionKeys,
  type TestCaller,
} from './test-app';

const DATA_DIR = '..data';
const DATA_TMP = '..data_tmp';

/**
 * A folder laid out the way the kubelet lays out a mounted Secret (its AtomicWriter):
 *
 *     ..2026_11_27_10_00_00.123456789/<key>   the real files of one version
 *     ..data -> ..2026_11_27_10_00_00.123456789
 *     <key> -> ..data/<key>                   what the pod reads
 *
 * An update writes a new timestamped folder, points a `..data_tmp` symlink at it, renames
 * `..data_tmp` over `..data` (the atomic swap: a reader sees the old version or the new one,
 * never a mix), fixes the user-visible links of added or removed keys, then deletes the old
 * folder. The user-visible files themselves are never written, so a watch on them sees nothing.
 */
export class K8sSecretVolume {
  private constructor(readonly dir: string) {}

  /** Creates the volume (the folder may exist and be empty) with its first version. */
  static create(dir: string, files: Record<string, string>): K8sSecretVolume {
    mkdirSync(dir, { recursive: true });
    const volume = new K8sSecretVolume(dir);
    volume.update(files);
    return volume;
  }

  /** The path a pod reads for `key` (what `secretFile` points at). */
  path(key: string): string {
    return join(this.dir, key);
  }

  /** The timestamped folder `..data` points at now (undefined before the first version). */
  currentVersion(): string | undefined {
    return existsSync(join(this.dir, DATA_DIR))
      ? readlinkSync(join(this.dir, DATA_DIR))
      : undefined;
  }

  /** Every entry of the folder, hidden ones included (for assertions on the layout). */
  entries(): string[] {
    return readdirSync(this.dir).sort();
  }

  /** Publishes a new version holding exactly `files`, as the kubelet does on a Secret update. */
  update(files: Record<string, string>): void {
    const previous = this.currentVersion();
    // (1) The payload goes into a fresh timestamped folder.
    const version = this.newVersionDir();
    for (const [key, content] of Object.entries(files)) {
      writeFileSync(join(this.dir, version, key), content, { mode: 0o644 });
    }
    // (2) ..data_tmp -> the new folder, renamed over ..data: one atomic swap.
    const tmp = join(this.dir, DATA_TMP);
    rmSync(tmp, { force: true });
    symlinkSync(version, tmp);
    renameSync(tmp, join(this.dir, DATA_DIR));
    // (3) User-visible links: <key> -> ..data/<key> for new keys; removed keys lose theirs.
    for (const key of Object.keys(files)) {
      if (!isSymlink(this.path(key))) symlinkSync(join(DATA_DIR, key), this.path(key));
    }
    for (const entry of readdirSync(this.dir)) {
      if (!entry.startsWith('..') && !(entry in files)) unlinkSync(this.path(entry));
    }
    // (4) The old version goes last.
    if (previous) rmSync(join(this.dir, previous), { recursive: true, force: true });
  }

  private newVersionDir(): string {
    const now = new Date();
    const p = (n: number, width = 2): string => String(n).padStart(width, '0');
    // The kubelet's pattern: `..` + "2006_01_02_15_04_05." (UTC) + a random suffix.
    const stamp = `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(
      now.getUTCHours(),
    )}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
    for (;;) {
      const name = `${stamp}${randomInt(100_000_000, 1_000_000_000)}`;
      if (existsSync(join(this.dir, name))) continue;
      mkdirSync(join(this.dir, name), { mode: 0o755 });
      return name;
    }
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** A configuration file written as-is (so `secretFile` may point anywhere, e.g. into a volume). */
export interface VendorConfigSpec {
  environments: Record<string, { tokenUrl: string; timeoutMs?: number }>;
  clients: {
    clientId: string;
    environment: string;
    secretFile: string;
    scope?: string;
    /** Written verbatim into the client entry: lets tests write invalid files. */
    extra?: Record<string, unknown>;
  }[];
  callers: TestCaller[];
  refresh?: { ratio?: number; minTtlSeconds?: number };
}

export function vendorConfigYaml(spec: VendorConfigSpec): string {
  return stringify({
    environments: spec.environments,
    clients: spec.clients.map((c) => ({
      clientId: c.clientId,
      environment: c.environment,
      secretFile: c.secretFile,
      ...(c.scope ? { scope: c.scope } : {}),
      ...c.extra,
    })),
    callers: spec.callers.map((c) => ({
      name: c.name,
      keySha256: c.keys.map(sha256Hex),
      clients: c.clients,
      admin: c.admin ?? false,
    })),
    refresh: { ratio: 0.75, minTtlSeconds: 30, ...spec.refresh },
  });
}

export function writeVendorConfig(path: string, spec: VendorConfigSpec): void {
  writeFileSync(path, vendorConfigYaml(spec));
}

/** What replicas of one fleet share: the Redis, the key prefix and the encryption key. */
export interface SharedStore {
  redisUrl: string;
  keyPrefix: string;
  encryptionKeys: string;
}

export function sharedStore(keyPrefix: string): SharedStore {
  return { redisUrl: requiredTestRedisUrl(), keyPrefix, encryptionKeys: testEncryptionKeys() };
}

export interface VendorAppOptions {
  configPath: string;
  /** Replicas of one fleet get the same SharedStore; without one, the in-memory store. */
  store?: SharedStore;
  /** Proactive refresh and start-up warming (default on). */
  scheduler?: boolean;
  logLevel?: string;
}

export interface RunningVendorApp {
  url: string;
  app: NestFastifyApplication;
  logs: CapturedLogs;
  close(): Promise<void>;
}

/**
 * startTestApp for a configuration file the test wrote itself: builds the service the way
 * main.ts does (same loader, same app factory), listens on 127.0.0.1:0 and captures every
 * log line. The configuration file and the secrets are the test's to clean up.
 */
export async function startVendorApp(options: VendorAppOptions): Promise<RunningVendorApp> {
  const env: NodeJS.ProcessEnv = {
    TOKEN_VENDOR_CONFIG: options.configPath,
    LOG_LEVEL: options.logLevel ?? 'debug',
  };
  if (options.store) {
    env.REDIS_URL = options.store.redisUrl;
    env.REDIS_KEY_PREFIX = options.store.keyPrefix;
    env.TOKEN_VENDOR_ENCRYPTION_KEYS = options.store.encryptionKeys;
  }
  const logs = new CapturedLogs();
  const app = await createTokenVendorApp({
    configuration: loadConfiguration(env),
    logStream: logs,
    refresh: options.scheduler,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, app, logs, close: () => app.close() };
}
