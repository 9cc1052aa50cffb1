import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

/** The Redis the suites share (global-setup.ts chose it; tests isolate themselves by key prefix). */
export function requireTestRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run the suite through jest (globalSetup)');
  return url;
}

/** A free TCP port on loopback (closed again before returning). */
export function freePort(): Promise<number> {
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
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await command(r);
  } finally {
    r.disconnect();
  }
}
