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
  /** `host:port,host:port,...` for REDIS_CLUSTER_NODES (every node, masters and replicas). */
  nodes: string;
  /** Every node's port, masters and replicas. */
  ports: number[];
  /** The ports of the nodes not killed. */
  livePorts(): number[];
  /** The ports of the masters now (CLUSTER NODES). */
  masterPorts(): Promise<number[]>;
  /** The port of the master serving `key`'s slot now (CLUSTER KEYSLOT + CLUSTER SLOTS). */
  masterFor(key: string): Promise<number>;
  /** The port of the replica of the master at `masterPort` (CLUSTER NODES). */
  replicaOf(masterPort: number): Promise<number>;
  /**
   * A failover without a crash (CLUSTER FAILOVER on the replica at `replicaPort`): the replica is
   * promoted, its master demoted to its replica; resolves once every node names the promoted one
   * as the master of its slots, reports cluster_state:ok, and the demoted master is in sync.
   */
  failover(replicaPort: number): Promise<void>;
  /**
   * Kills the master at `port` (SIGKILL); its replica is promoted by the others (node timeout
   * 2 s). Resolves with the promoted replica's port once every live node names it as the master
   * of those slots and reports cluster_state:ok.
   */
  killMaster(port: number): Promise<number>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  masters?: number;
  /** 0 (the default) or 1: one replica per master (`--cluster-replicas 1`), for failovers. */
  replicasPerMaster?: 0 | 1;
}

/** One line of CLUSTER NODES. */
interface ClusterNode {
  id: string;
  port: number;
  flags: string[];
  /** The master's id for a replica, '-' for a master. */
  masterId: string;
  /** Slot ranges served, for a master (`0-5460`, ...). */
  slots: string[];
}

function parseClusterNodes(text: string): ClusterNode[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
      const port = Number(address.split('@')[0].split(':').pop());
      return { id, port, flags: flags.split(','), masterId, slots };
    });
}

const clusterNodes = (port: number): Promise<ClusterNode[]> =>
  ask(port, (r) => r.cluster('NODES')).then((t) => parseClusterNodes(String(t)));

const clusterStateOk = (port: number): Promise<boolean> =>
  ask(port, (r) => r.cluster('INFO')).then((info) => String(info).includes('cluster_state:ok'));

const replicaInSyncWith = (port: number, masterPort: number): Promise<boolean> =>
  ask(port, (r) => r.info('replication')).then(
    (i) =>
      i.includes('role:slave') &&
      i.includes(`master_port:${masterPort}\r`) &&
      i.includes('master_link_status:up'),
  );

/**
 * A Redis Cluster from the redis-server binary on free loopback ports: 3 masters, and
 * optionally one replica each (6 nodes) for failovers. A number is the masters' count (no
 * replicas).
 */
export async function startRedisCluster(
  options: number | RedisClusterOptions = {},
): Promise<RedisClusterUnderTest> {
  const { masters = 3, replicasPerMaster = 0 } =
    typeof options === 'number' ? { masters: options } : options;
  const dir = mkdtempSync(join(tmpdir(), 'tv-cluster-'));
  const procs: Proc[] = [];
  for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
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
        String(replicasPerMaster),
        '--cluster-yes',
      ],
      {
        timeout: 20_000,
      },
    );
    // Every node agrees on the masters and replicas, and each replica is in sync with its master.
    for (const p of procs) {
      await waitFor(`cluster state ok on ${p.port}`, async () => {
        if (!(await clusterStateOk(p.port))) return false;
        const nodes = await clusterNodes(p.port);
        const masterNodes = nodes.filter((n) => n.flags.includes('master') && n.slots.length > 0);
        const replicaNodes = nodes.filter((n) => n.flags.includes('slave'));
        return (
          masterNodes.length === masters && replicaNodes.length === masters * replicasPerMaster
        );
      });
    }
    const layout = await clusterNodes(procs[0].port);
    for (const replica of layout.filter((n) => n.flags.includes('slave'))) {
      const master = layout.find((n) => n.id === replica.masterId);
      if (!master) throw new Error(`no master for the replica on ${replica.port}`);
      await waitFor(`replica ${replica.port} in sync with ${master.port}`, () =>
        replicaInSyncWith(replica.port, master.port),
      );
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const alive = (): Proc[] => procs.filter((p) => p.child.exitCode === null && !p.child.signalCode);
  /** [start, end, [host, port, id, ...] of the master, ...its replicas] per range. */
  const slotsOn = (port: number) => ask(port, (r) => r.cluster('SLOTS'));
  const replicaOf = async (masterPort: number): Promise<number> => {
    const nodes = await clusterNodes(alive()[0].port);
    const master = nodes.find((n) => n.port === masterPort);
    const replica = nodes.find((n) => n.masterId === master?.id && n.flags.includes('slave'));
    if (!master || !replica) throw new Error(`no replica of a master on ${masterPort}`);
    return replica.port;
  };
  /** Every live node names `port` as the master of `ranges` and reports cluster_state:ok. */
  const servedBy = async (port: number, ranges: [number, number][]): Promise<boolean> => {
    for (const p of alive()) {
      if (!(await clusterStateOk(p.port))) return false;
      const slots = await slotsOn(p.port);
      for (const [start, end] of ranges) {
        const range = slots.find((s) => s[0] === start && s[1] === end);
        if (range?.[2][1] !== port) return false;
      }
    }
    return true;
  };
  const rangesOf = async (port: number): Promise<[number, number][]> =>
    (await slotsOn(alive()[0].port))
      .filter((s) => s[2][1] === port)
      .map((s): [number, number] => [s[0], s[1]]);
  return {
    nodes: procs.map((p) => `127.0.0.1:${p.port}`).join(','),
    ports: procs.map((p) => p.port),
    livePorts: () => alive().map((p) => p.port),
    async masterPorts() {
      const nodes = await clusterNodes(alive()[0].port);
      return nodes
        .filter((n) => n.flags.includes('master') && !n.flags.includes('fail'))
        .map((n) => n.port);
    },
    async masterFor(key) {
      const port = alive()[0].port;
      const slot = Number(await ask(port, (r) => r.cluster('KEYSLOT', key)));
      const range = (await slotsOn(port)).find((s) => s[0] <= slot && slot <= s[1]);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return range[2][1];
    },
    replicaOf,
    async failover(replicaPort) {
      const nodes = await clusterNodes(replicaPort);
      const masterId = nodes.find((n) => n.flags.includes('myself'))?.masterId;
      const from = nodes.find((n) => n.id === masterId)?.port;
      if (from === undefined) throw new Error(`the node on ${replicaPort} is not a replica`);
      const ranges = await rangesOf(from);
      await ask(replicaPort, (r) => r.cluster('FAILOVER'));
      await waitFor(`every node to name ${replicaPort} as master`, () =>
        servedBy(replicaPort, ranges),
      );
      await waitFor(`the demoted master ${from} in sync with ${replicaPort}`, () =>
        replicaInSyncWith(from, replicaPort),
      );
    },
    async killMaster(port) {
      const replicaPort = await replicaOf(port);
      const ranges = await rangesOf(port);
      const proc = procs.find((p) => p.port === port);
      if (!proc) throw new Error(`no node on ${port}`);
      await kill(proc.child);
      await waitFor(`every live node to name ${replicaPort} as master`, () =>
        servedBy(replicaPort, ranges),
      );
      return replicaPort;
    },
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
