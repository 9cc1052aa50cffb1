import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { askRedis as ask, freePort, THROWAWAY_REDIS_ARGS } from './redis-server';
import { waitFor as waitUntil } from './wait';

const run = promisify(execFile);

interface Proc {
  port: number;
  child: ChildProcess;
}

/** Redis refuses connections while it starts: an error is "not yet". */
function waitFor(what: string, check: () => Promise<boolean>): Promise<boolean> {
  return waitUntil(what, () => check().catch(() => false), 20_000, 100);
}

function launch(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  child.unref();
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGKILL');
  await exited;
}

export interface RedisClusterUnderTest {
  /** `host:port,host:port,...` for REDIS_CLUSTER_NODES. */
  nodes: string;
  ports: number[];
  stop(): Promise<void>;
}

/** A 3-master Redis Cluster from the redis-server binary on free loopback ports. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'tv-cluster-'));
  const procs: Proc[] = [];
  for (let i = 0; i < masters; i++) {
    const port = await freePort();
    const child = launch([
      '--port',
      String(port),
      ...THROWAWAY_REDIS_ARGS,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      '2000',
      '--dir',
      dir,
      '--protected-mode',
      'no',
    ]);
    procs.push({ port, child });
  }
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => kill(p.child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const p of procs)
      await waitFor(`cluster node ${p.port}`, () =>
        ask(p.port, (r) => r.ping()).then((x) => x === 'PONG'),
      );
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...procs.map((p) => `127.0.0.1:${p.port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      {
        timeout: 20_000,
      },
    );
    for (const p of procs) {
      await waitFor(`cluster state ok on ${p.port}`, () =>
        ask(p.port, (r) => r.cluster('INFO')).then((info) =>
          String(info).includes('cluster_state:ok'),
        ),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    nodes: procs.map((p) => `127.0.0.1:${p.port}`).join(','),
    ports: procs.map((p) => p.port),
    stop,
  };
}

export interface RedisSentinelUnderTest {
  /** `host:port,...` for REDIS_SENTINELS. */
  sentinels: string;
  name: string;
  masterPort: number;
  replicaPort: number;
  /** The port the Sentinels currently name as master. */
  currentMasterPort(): Promise<number>;
  killMaster(): Promise<void>;
  /**
   * A failover without a crash (`SENTINEL FAILOVER`): the replica is promoted, the master
   * demoted to its replica; resolves once the Sentinels name the new master and the demoted one
   * is in sync with it.
   */
  failover(): Promise<void>;
  /** Kills whichever server the Sentinels name as master now (after failover(), the other one). */
  killCurrentMaster(): Promise<void>;
  stop(): Promise<void>;
}

/** A master, one replica and three Sentinels (quorum 2), from the redis-server binary. */
export async function startRedisSentinel(name = 'tvmaster'): Promise<RedisSentinelUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'tv-sentinel-'));
  const base = [...THROWAWAY_REDIS_ARGS, '--dir', dir];
  const masterPort = await freePort();
  const master = launch(['--port', String(masterPort), ...base]);
  const replicaPort = await freePort();
  const replica = launch([
    '--port',
    String(replicaPort),
    '--replicaof',
    '127.0.0.1',
    String(masterPort),
    ...base,
  ]);
  const sentinels: Proc[] = [];
  const all = (): ChildProcess[] => [master, replica, ...sentinels.map((s) => s.child)];
  const stop = async (): Promise<void> => {
    await Promise.all(all().map(kill));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('master', () => ask(masterPort, (r) => r.ping()).then((x) => x === 'PONG'));
    await waitFor('replica in sync', () =>
      ask(replicaPort, (r) => r.info('replication')).then((i) =>
        i.includes('master_link_status:up'),
      ),
    );
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          'protected-mode no',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push({ port, child: launch([conf, '--sentinel']) });
    }
    for (const s of sentinels) {
      await waitFor(`sentinel ${s.port} sees the replica and the other sentinels`, () =>
        ask(s.port, async (r) => {
          const replicas = (await r.call('SENTINEL', 'REPLICAS', name)) as unknown[];
          const peers = (await r.call('SENTINEL', 'SENTINELS', name)) as unknown[];
          return replicas.length === 1 && peers.length === 2;
        }),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const currentMasterPort = (): Promise<number> =>
    ask(sentinels[0].port, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).then((a) =>
      Number((a as string[])[1]),
    );
  return {
    sentinels: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    name,
    masterPort,
    replicaPort,
    currentMasterPort,
    killMaster: () => kill(master),
    async failover() {
      const from = await currentMasterPort();
      const to = from === masterPort ? replicaPort : masterPort;
      await ask(sentinels[0].port, (r) => r.call('SENTINEL', 'FAILOVER', name));
      await waitFor('the Sentinels to name the promoted master', async () => {
        return (await currentMasterPort()) === to;
      });
      await waitFor('the demoted master in sync with the promoted one', () =>
        ask(from, (r) => r.info('replication')).then(
          (i) => i.includes('role:slave') && i.includes('master_link_status:up'),
        ),
      );
    },
    async killCurrentMaster() {
      await kill((await currentMasterPort()) === masterPort ? master : replica);
    },
    stop,
  };
}
