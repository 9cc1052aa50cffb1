import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** The Redis the suites share (global-setup.ts chose it; tests isolate themselves by key prefix). */
export function requireTestRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the suite through jest (globalSetup)');
  return url;
}

/**
 * Ports the tests hand out, below the kernel's ephemeral range (net.ipv4.ip_local_port_range:
 * 32768–60999 on Linux by default). A port the kernel picked (`listen(0)`) is in that range, so
 * between freePort() and the listen that uses it (a replica started, or restarted, on it) an
 * outgoing loopback connection could take it: a replica then failed with EADDRINUSE. Each jest
 * worker has its own slice, so two workers never hand out the same port.
 */
const PORT_BASE = 20_000;
const PORT_SLICE = 2_000;
const PORT_SLICES = 6;
/** Where this module copy starts in its slice (jest loads it afresh for every test file). */
let nextInSlice = Math.floor(Math.random() * PORT_SLICE);

function ephemeralRangeStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {
    return 0; // not Linux: let the kernel choose
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function kernelPickedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A free TCP port on loopback (closed again before returning), outside the ephemeral range. */
export async function freePort(): Promise<number> {
  // An unknown range (NaN, not Linux) lets the kernel choose, as before.
  if (!(ephemeralRangeStart() >= PORT_BASE + PORT_SLICES * PORT_SLICE)) return kernelPickedPort();
  // More workers than slices share slices (modulo): the bind check still keeps them apart,
  // only the race this avoids could come back; `npm test` runs 2.
  const worker = Number(process.env.JEST_WORKER_ID ?? '1');
  const first = PORT_BASE + ((Math.max(worker, 1) - 1) % PORT_SLICES) * PORT_SLICE;
  for (let tried = 0; tried < PORT_SLICE; tried++) {
    const port = first + (nextInSlice++ % PORT_SLICE);
    if (await canListen(port)) return port;
  }
  return kernelPickedPort();
}

/** A test's own redis-server: loopback only, nothing written to disk. */
export const THROWAWAY_REDIS_ARGS = [
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--protected-mode',
  'no',
];

export interface ThrowawayRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Graceful stop (SHUTDOWN NOSAVE, then SIGKILL if needed). */
  stop(): Promise<void>;
  /** Abrupt death, as in an outage. */
  kill(): Promise<void>;
  /** Start again on the same port (after kill/stop). */
  restart(): Promise<void>;
}

/** Starts `redis-server` on a free loopback port with nothing persisted. */
export async function startRedisServer(extraArgs: string[] = []): Promise<ThrowawayRedis> {
  const port = await freePort();
  let child: ChildProcess = await launch(port, extraArgs);
  const waitExit = (c: ChildProcess): Promise<void> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise((r) => c.once('exit', () => r()));
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid ?? 0;
    },
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await waitExit(child);
      clearTimeout(timer);
    },
    async kill() {
      child.kill('SIGKILL');
      await waitExit(child);
    },
    async restart() {
      child = await launch(port, extraArgs);
    },
  };
}

async function launch(port: number, extraArgs: string[]): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), ...THROWAWAY_REDIS_ARGS, ...extraArgs],
    { stdio: 'ignore' },
  );
  child.unref();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await askRedis(port, (r) => r.ping());
      return child;
    } catch {
      // refused while it starts: expected
      if (child.exitCode !== null)
        throw new Error(`redis-server exited with ${child.exitCode} on port ${port}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** One command on a fresh loopback connection that never retries (probes and inspection). */
export async function askRedis<T>(port: number, command: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(port, '127.0.0.1', {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    // ioredis's disconnect arms a 2-s timer cleared only by the socket's 'close', which a
    // refused connection has already emitted: the timer then held the jest process (the
    // global setup probes redis-server while it starts) 2 s past the end of a run.
    disconnectTimeout: 0,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await command(r);
  } finally {
    r.disconnect();
  }
}
