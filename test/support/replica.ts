import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './redis-server';
import { sha256Hex } from './test-app';

/** The production entry point, built by global-setup (scripts/build-if-needed.js). */
export const REPLICA_ENTRY = join(__dirname, '../../dist/apps/token-vendor/main.js');
/** How long a replica may take to answer /health/ready 200 after it was spawned. */
export const REPLICA_READY_TIMEOUT_MS = 30_000;
/** How long stop() waits for a SIGTERM'd replica before it kills it. */
export const REPLICA_STOP_TIMEOUT_MS = 10_000;

export interface ReplicaOptions {
  /** Environment for the process: TOKEN_VENDOR_CONFIG, REDIS_URL, REDIS_KEY_PREFIX, ... */
  env: NodeJS.ProcessEnv;
  /** Default: a free loopback port. */
  port?: number;
  /** A name for messages (default `replica-<port>`). */
  name?: string;
}

export interface Replica {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Every line the process wrote (stdout and stderr; JSON lines from pino). */
  readonly logs: string[];
  /** The parsed JSON lines (non-JSON lines are left out). */
  entries(): Record<string, unknown>[];
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...). SIGSTOP/SIGCONT are tracked for cleanup. */
  kill(signal: NodeJS.Signals): void;
  /** SIGCONT (in case it is paused), SIGTERM, wait for the exit; resolves with the exit code (null when killed by a signal). */
  stop(): Promise<number | null>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly alive: boolean;
}

const running = new Set<ChildProcess>();
/** The names of the replicas running now, by process id (to tell whose connection is whose). */
const namesByPid = new Map<number, string>();

/** Process id → name of every replica this worker runs now. */
export function runningReplicas(): ReadonlyMap<number, string> {
  return namesByPid;
}
const paused = new Set<ChildProcess>();

// Last resort: a worker that dies without running afterAll must not leave replicas behind.
process.once('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Spawns `node dist/apps/token-vendor/main.js` (the production entry point) on loopback, keeps
 * its log lines, and resolves once `GET /health/ready` answers 200. Rejects (and kills the
 * process) if it exits first or is not ready in time.
 */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const port = options.port ?? (await freePort());
  const name = options.name ?? `replica-${port}`;
  const logs: string[] = [];
  const child = spawn(process.execPath, [REPLICA_ENTRY], {
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'debug',
      ...options.env,
      PORT: String(port),
      HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  if (child.pid !== undefined) namesByPid.set(child.pid, name);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (child.pid !== undefined) namesByPid.delete(child.pid);
      paused.delete(child);
      resolve({ code, signal });
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) logs.push(line);
    });
    stream.on('end', () => {
      if (partial.trim()) logs.push(partial);
      partial = '';
    });
  }
  const url = `http://127.0.0.1:${port}`;
  const isAlive = (): boolean => child.exitCode === null && child.signalCode === null;

  const replica: Replica = {
    name,
    url,
    port,
    pid: child.pid ?? 0,
    logs,
    exited,
    get alive() {
      return isAlive();
    },
    entries: () => parseLines(logs),
    kill(signal) {
      if (!isAlive()) return;
      if (signal === 'SIGSTOP') paused.add(child);
      if (signal === 'SIGCONT') paused.delete(child);
      child.kill(signal);
    },
    async stop() {
      if (isAlive()) {
        child.kill('SIGCONT');
        paused.delete(child);
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), REPLICA_STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      const { code } = await exited;
      return code;
    },
  };

  try {
    await waitUntilReady(replica);
  } catch (e) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    throw new Error(
      `${name} did not become ready: ${(e as Error).message}\n${logs.slice(-20).join('\n')}`,
    );
  }
  return replica;
}

async function waitUntilReady(replica: Replica): Promise<void> {
  const deadline = Date.now() + REPLICA_READY_TIMEOUT_MS;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void replica.exited.then((e) => (exit = e));
  for (;;) {
    if (exit) throw new Error(`exited with code ${exit.code} (signal ${exit.signal})`);
    try {
      const res = await fetch(`${replica.url}/health/ready`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready within ${REPLICA_READY_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Kills every replica this worker started and has not seen exit: paused ones are continued
 * first so the kill is delivered at once. For afterAll/afterEach, whatever the test did.
 */
export async function killAllReplicas(): Promise<void> {
  const children = [...running];
  const exits = children.map(
    (child) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
      }),
  );
  for (const child of children) {
    try {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  paused.clear();
  await Promise.all(exits);
}

function parseLines(lines: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line that is not JSON (a Node warning): skipped
    }
  }
  return out;
}

export interface ConfigClient {
  clientId: string;
  environment: string;
  secret: string;
  scope?: string;
}

export interface ConfigCaller {
  name: string;
  keys: string[];
  clients: string[];
  admin?: boolean;
}

export interface ServiceConfigFiles {
  /** Temporary folder holding the configuration and the secret files. */
  dir: string;
  configPath: string;
  /** Writes another configuration file in the same folder (e.g. a per-replica token URL). */
  writeVariant(
    name: string,
    environments: Record<string, { tokenUrl: string; timeoutMs?: number }>,
    /** Per client id, a different scope in this variant. */
    scopes?: Record<string, string>,
  ): string;
  remove(): void;
}

/**
 * Writes a configuration YAML (contract §5) and one secret file per client into a temporary
 * folder. Caller keys are stored as their SHA-256 digests, as in production.
 */
export function writeServiceConfig(options: {
  environments: Record<string, { tokenUrl: string; timeoutMs?: number }>;
  clients: ConfigClient[];
  callers: ConfigCaller[];
  refresh?: { ratio?: number; minTtlSeconds?: number; minRejectionIntervalSeconds?: number };
}): ServiceConfigFiles {
  const dir = mkdtempSync(join(tmpdir(), 'token-vendor-fleet-'));
  mkdirSync(join(dir, 'secrets'));
  const clients = options.clients.map((c) => {
    const secretFile = join(dir, 'secrets', `${c.environment}--${c.clientId}`);
    writeFileSync(secretFile, `${c.secret}\n`, { mode: 0o600 });
    const entry: Record<string, unknown> = {
      clientId: c.clientId,
      environment: c.environment,
      secretFile,
    };
    if (c.scope) entry.scope = c.scope;
    return entry;
  });
  const callers = options.callers.map((c) => ({
    name: c.name,
    keySha256: c.keys.map(sha256Hex),
    clients: c.clients,
    admin: c.admin ?? false,
  }));
  const refresh = { ratio: 0.75, minTtlSeconds: 30, ...options.refresh };
  const write = (
    file: string,
    environments: Record<string, { tokenUrl: string; timeoutMs?: number }>,
    scopes: Record<string, string> = {},
  ): string => {
    const path = join(dir, file);
    const variant = clients.map((c) =>
      scopes[c.clientId as string] === undefined
        ? c
        : { ...c, scope: scopes[c.clientId as string] },
    );
    writeFileSync(path, stringify({ environments, clients: variant, callers, refresh }));
    return path;
  };
  return {
    dir,
    configPath: write('config.yaml', options.environments),
    writeVariant: (name, environments, scopes) =>
      write(`config-${name}.yaml`, environments, scopes),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
