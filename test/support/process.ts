import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './redis-server';
import { waitFor } from './wait';

/** The production entry point, built by global-setup (scripts/build-if-needed.js). */
export const REPLICA_ENTRY = join(__dirname, '../../dist/apps/token-vendor/main.js');
/** How long a replica may take to answer /health/ready 200 after it was spawned. */
export const REPLICA_READY_TIMEOUT_MS = 30_000;
/** How long stop() waits for a SIGTERM'd replica before it kills it. */
export const REPLICA_STOP_TIMEOUT_MS = 10_000;

export interface ReplicaOptions {
  /** Environment for the process: TOKEN_VENDOR_CONFIG, REDIS_URL, REDIS_KEY_PREFIX, ... (startService builds it). */
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
  /** The Prometheus listener (`METRICS_PORT`): `${metricsUrl}/metrics`. */
  readonly metricsUrl: string;
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
 * process) if it exits first or is not ready in time. Tests reach it through startService
 * (`run: 'process'`).
 */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const port = options.port ?? (await freePort());
  // Every replica needs a metrics port of its own (the default, 9464, is one per machine).
  const metricsPort = options.env.METRICS_PORT ?? String(await freePort());
  const name = options.name ?? `replica-${port}`;
  const logs: string[] = [];
  const child = spawn(process.execPath, [REPLICA_ENTRY], {
    env: {
      PATH: process.env.PATH,
      LOG_LEVEL: 'debug',
      ...options.env,
      METRICS_PORT: metricsPort,
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
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
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
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void replica.exited.then((e) => (exit = e));
  await waitFor(
    '/health/ready to answer 200',
    async () => {
      if (exit) throw new Error(`exited with code ${exit.code} (signal ${exit.signal})`);
      try {
        const res = await fetch(`${replica.url}/health/ready`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false; // not listening yet
      }
    },
    REPLICA_READY_TIMEOUT_MS,
    100,
  );
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
