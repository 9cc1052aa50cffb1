import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { SystemClock } from '@app/clock';
import { RedisTokenStore, TokenCipher, createRedisClient, waitUntilReady } from '@app/token-store';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  askRedis,
  httpRequest,
  type InProcessService,
  type RedisClusterUnderTest,
  startRedisCluster,
  startService,
  testEncryptionKeys,
  waitFor,
} from '../support';
import {
  describeFleetInvalidation,
  expectInvalidationReachesFleet,
  listenForHeartbeats,
  type TopologyFleet,
} from './fleet-invalidation';

/**
 * A real 3-master Redis Cluster (redis-server --cluster-enabled + redis-cli --cluster create):
 * tokens vend and are stored across slots; token, fence and lock scripts stay cluster-safe
 * (hash-tagged keys); single flight holds across two replicas.
 */
const KEY = 'cluster-caller-key-000000000000';
const CLIENTS = [
  'alpha.client',
  'bravo.client',
  'charlie.client',
  'delta.client',
  'echo.client',
  'foxtrot.client',
];

describe('Redis Cluster', () => {
  let cluster: RedisClusterUnderTest;
  let idp: RunningSandbox;
  let replicas: InProcessService[] = [];
  let direct: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    idp = await startIdentitySandbox({
      clients: CLIENTS.map((clientId) => ({ clientId, secret: `s-${clientId}` })),
    });
    const encryptionKeys = testEncryptionKeys();
    const keyPrefix = `tv-cluster-${Date.now()}:`;
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startService({
          scheduler: false, // the burst below must meet a cold cache
          redis: { REDIS_CLUSTER_NODES: cluster.nodes },
          keyPrefix,
          encryptionKeys,
          environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
          clients: CLIENTS.map((clientId) => ({
            clientId,
            environment: 'uat',
            secret: `s-${clientId}`,
          })),
          callers: [{ name: 'c', keys: [KEY], clients: ['*'] }],
        }),
      );
    }
    direct = new Cluster(
      cluster.nodes.split(',').map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
    );
  }, 60_000);

  afterAll(async () => {
    direct?.disconnect();
    for (const r of replicas) await r.close();
    replicas = [];
    await idp?.close();
    await cluster?.stop();
  });

  const get = (replica: InProcessService, clientId: string) =>
    httpRequest(`${replica.url}/tokens/${clientId}`, {
      headers: { authorization: `Bearer ${KEY}` },
    });

  it('vends every client once for the whole fleet under a concurrent burst, storing each in the cluster', async () => {
    idp.resetStats();
    const requests = CLIENTS.flatMap((clientId) =>
      Array.from({ length: 20 }, (_, i) =>
        get(replicas[i % 2], clientId).then((r) => ({ clientId, r })),
      ),
    );
    const answers = await Promise.all(requests);
    const failed = answers.filter((a) => a.r.status !== 200);
    if (failed.length > 0) {
      // The assertion below shows only statuses; the bodies and each replica's last warnings
      // say why.
      for (const a of failed.slice(0, 5)) console.error(a.clientId, a.r.status, a.r.text);
      for (const r of replicas)
        console.error(
          r.logs.lines
            .filter((l) => /warn|error/i.test(l))
            .slice(-8)
            .join('\n'),
        );
    }
    expect(answers.map((a) => a.r.status)).toEqual(answers.map(() => 200));
    for (const clientId of CLIENTS) {
      const tokens = new Set(
        answers.filter((a) => a.clientId === clientId).map((a) => a.r.json().access_token),
      );
      expect(tokens.size).toBe(1);
      expect(idp.stats().byClient[clientId]).toBe(1);
    }
    expect(idp.stats().tokenRequests).toBe(CLIENTS.length);

    // The keys are spread over the masters' slots and hold only ciphertext.
    const slots = new Set<number>();
    for (const clientId of CLIENTS) {
      const key = `${replicas[0].keyPrefix}{uat/${clientId}}:token`;
      const value = await direct.get(key);
      expect(value).toMatch(/^\d+\|\d+\|v1\.t1\./);
      slots.add(Number(await direct.cluster('KEYSLOT', key)));
    }
    expect(slots.size).toBeGreaterThan(1);
  });

  it('runs the fenced write and the owner-checked lock scripts on the cluster', async () => {
    const client = createRedisClient({
      mode: 'cluster',
      nodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
    });
    await waitUntilReady(client, 10_000);
    const clock = new SystemClock();
    const store = new RedisTokenStore(
      client,
      new TokenCipher([{ kid: 'x', key: randomBytes(32) }]),
      clock,
      `tv-fence-${Date.now()}:`,
    );
    const ref = { environment: 'uat', clientId: 'fence.client' };
    // A token's times are readings of the store user's monotonic clock.
    const now = clock.monotonic();
    const token = (expiresIn: number, accessToken: string) => ({
      accessToken,
      tokenType: 'Bearer' as const,
      requestedAt: now,
      expiresAt: now + expiresIn,
    });
    try {
      expect(await store.put(ref, token(60_000, 'newer'))).toBe(true);
      expect(await store.put(ref, token(30_000, 'older'))).toBe(false);
      expect((await store.get(ref))?.accessToken).toBe('newer');

      expect(await store.acquireLock(ref, 'owner-a', 5_000)).toBe(true);
      expect(await store.acquireLock(ref, 'owner-b', 5_000)).toBe(false);
      await store.releaseLock(ref, 'owner-b'); // not the owner: no effect
      expect(await store.acquireLock(ref, 'owner-b', 5_000)).toBe(false);
      expect(await store.extendLock(ref, 'owner-a', 5_000)).toBe(true);
      await store.releaseLock(ref, 'owner-a');
      expect(await store.acquireLock(ref, 'owner-b', 5_000)).toBe(true);
    } finally {
      client.disconnect();
    }
    // The cluster client's own 10 s readiness budget is the requirement, not Jest's default 5 s.
  }, 30_000);
});

/** The clients of the failover cases (the shared cases have their own). */
const FAILOVER_CLIENT = 'cluster-failover.client';
const CRASH_CLIENT = 'cluster-crash.client';

/**
 * Fleet-wide invalidation through Cluster (README "Fleet-wide invalidation"): 3 replica
 * processes on their own Cluster of 3 masters with one replica each. Plain PUBLISH reaches
 * subscribers on every node (the cluster bus forwards it), so each replica's subscriber may sit on
 * any node: an admin refresh or a rejection report on one replica reaches the others within 1 s,
 * and a paused replica re-checks the durable marker (hash-tagged beside the token, in the
 * client's slot) when it resumes. After a failover of the master serving a client's slot, with or
 * without a crash of that master, every replica's subscriber is on a live node, an invalidation
 * still reaches every replica, and the new token is written to the promoted master.
 */
describeFleetInvalidation<{ cluster: RedisClusterUnderTest; direct: Cluster; spare: number }>({
  name: 'Redis Cluster',
  clientPrefix: 'cluster',
  extraClients: [FAILOVER_CLIENT, CRASH_CLIENT],
  async start() {
    const cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1 });
    const direct = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    // The fleet's inspection client must outlive the crash case (a client left connecting to a
    // killed node holds jest past the run): a master serving neither failover client's slot.
    // Every token key is hash-tagged `{uat/<client>}`, so its slot is known before the fleet.
    const failedOver = await Promise.all(
      [FAILOVER_CLIENT, CRASH_CLIENT].map((c) => cluster.masterFor(`{uat/${c}}`)),
    );
    const spare = (await cluster.masterPorts()).find((p) => !failedOver.includes(p));
    if (spare === undefined) throw new Error('both failover clients share no spare master');
    return { cluster, direct, spare };
  },
  redisEnv: ({ cluster }) => ({ REDIS_CLUSTER_NODES: cluster.nodes }),
  inspectUrl: ({ spare }) => `redis://127.0.0.1:${spare}`,
  warmedUp: async ({ direct }, fleet, clientIds) =>
    (await Promise.all(clientIds.map((c) => direct.get(fleet.tokenKey(c))))).every(Boolean),
  async stop({ cluster, direct }) {
    direct.disconnect();
    await cluster.stop();
  },
  async afterPausedReplica({ direct }, fleet, clientId) {
    // The durable marker sits in the client's slot, beside its token.
    const marker = `${fleet.keyPrefix}{uat/${clientId}}:revoked`;
    expect(await direct.cluster('KEYSLOT', marker)).toBe(
      await direct.cluster('KEYSLOT', fleet.tokenKey(clientId)),
    );
    expect(await direct.hlen(marker)).toBe(1);
  },
  casesBefore(run) {
    it("every replica's heartbeat reaches a subscriber on every node", async () => {
      // What the shared cases rely on: a heartbeat published through any node is seen by a
      // subscriber on each node, master or replica.
      const { cluster } = run.topology;
      const heardOn = await Promise.all(
        cluster.ports.map(async (port) => {
          const listener = await listenForHeartbeats(run.fleet, port);
          try {
            await waitFor(
              `every replica's heartbeat on node ${port}`,
              () => listener.heard.size >= 3,
              5_000,
            );
            return listener.heard.size;
          } finally {
            listener.disconnect();
          }
        }),
      );
      expect(heardOn).toEqual(cluster.ports.map(() => 3));
      // The heartbeat wait's own 5 s budget, after a subscriber connects on each node, exceeds
      // Jest's default 5 s.
    }, 20_000);
  },
  casesAfter(run) {
    it("after a failover without a crash (CLUSTER FAILOVER) of the master serving the client's slot, an invalidation still reaches every replica within 1 s", async () => {
      const { cluster } = run.topology;
      const key = run.fleet.tokenKey(FAILOVER_CLIENT);
      const replica = await cluster.replicaOf(await cluster.masterFor(key));
      await cluster.failover(replica);
      expect(await cluster.masterFor(key)).toBe(replica);
      await expectInvalidationOnNewMaster(run, replica, FAILOVER_CLIENT);
    }, 90_000);

    it("after the master serving the client's slot is killed and its replica promoted, an invalidation still reaches every replica within 1 s", async () => {
      const { cluster } = run.topology;
      const key = run.fleet.tokenKey(CRASH_CLIENT);
      const killed = await cluster.masterFor(key);
      const promoted = await cluster.killMaster(killed);
      expect(await cluster.masterFor(key)).toBe(promoted);
      expect(cluster.livePorts()).not.toContain(killed);
      await expectInvalidationOnNewMaster(run, promoted, CRASH_CLIENT);
    }, 90_000);
  },
});

/**
 * After a failover to the node at `port` (now the master of `clientId`'s slot): every replica's
 * fleet subscriber is on a live node (PUBSUB NUMSUB counts a node's own subscribers) and its
 * heartbeats reach the new master; an admin refresh on one replica reaches every replica within
 * 1 s; and the new token was written to the new master.
 */
async function expectInvalidationOnNewMaster(
  { topology: { cluster }, fleet }: TopologyFleet<{ cluster: RedisClusterUnderTest }>,
  port: number,
  clientId: string,
): Promise<void> {
  const channel = `${fleet.keyPrefix}fleet`;
  // A subscriber on a killed node reconnects with a capped backoff (README "Redis Sentinel and
  // Cluster").
  await waitFor(
    "every replica's fleet subscriber on a live node",
    async () => {
      const counts = await Promise.all(
        cluster
          .livePorts()
          .map((p) => askRedis(p, (r) => r.pubsub('NUMSUB', channel)) as Promise<[string, number]>),
      );
      return counts.reduce((sum, [, n]) => sum + n, 0) === fleet.replicas.length;
    },
    10_000,
    50,
  );
  const listener = await listenForHeartbeats(fleet, port);
  try {
    await waitFor(
      `every replica's heartbeat on ${port}`,
      () => listener.heard.size >= fleet.replicas.length,
      5_000,
    );
  } finally {
    listener.disconnect();
  }
  expect(listener.heard.size).toBe(fleet.replicas.length);

  const key = fleet.tokenKey(clientId);
  const before = await askRedis(port, (r) => r.get(key));
  expect(before).toMatch(/^\d+\|\d+\|v1\./);
  await expectInvalidationReachesFleet(fleet, clientId, 'admin-refresh');
  // A plain connection to the new master: a node not serving the slot answers MOVED.
  const stored = await askRedis(port, (r) => r.get(key));
  expect(stored).toMatch(/^\d+\|\d+\|v1\./);
  expect(stored).not.toBe(before);
}
