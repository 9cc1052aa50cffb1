import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  askRedis,
  httpRequest,
  type InProcessService,
  type RedisSentinelUnderTest,
  startRedisSentinel,
  startService,
  testEncryptionKeys,
  type Fleet,
  waitFor,
} from '../support';
import {
  describeFleetInvalidation,
  expectInvalidationReachesFleet,
  listenForHeartbeats,
} from './fleet-invalidation';

/**
 * A real master + replica + 3 Sentinels: tokens vend and stay single-flight through Sentinel;
 * the master killed under load is failed over, callers holding a token see no failure, and
 * the service writes to the promoted master without a restart.
 */
const KEY = 'sentinel-caller-key-000000000000';
const ADMIN_KEY = 'sentinel-admin-key-0000000000000';

describe('Redis Sentinel', () => {
  let sentinel: RedisSentinelUnderTest;
  let idp: RunningSandbox;
  let replicas: InProcessService[] = [];
  const keyPrefix = `tv-sentinel-${Date.now()}:`;
  const tokenKey = `${keyPrefix}{uat/deals.client}:token`;

  beforeAll(async () => {
    sentinel = await startRedisSentinel();
    idp = await startIdentitySandbox({
      clients: [{ clientId: 'deals.client', secret: 'sentinel-secret' }],
    });
    const encryptionKeys = testEncryptionKeys();
    for (let i = 0; i < 2; i++) {
      replicas.push(
        await startService({
          scheduler: false,
          redis: { REDIS_SENTINELS: sentinel.sentinels, REDIS_SENTINEL_NAME: sentinel.name },
          keyPrefix,
          encryptionKeys,
          environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
          clients: [{ clientId: 'deals.client', environment: 'uat', secret: 'sentinel-secret' }],
          callers: [
            { name: 'c', keys: [KEY], clients: ['*'] },
            { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
          ],
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const r of replicas) await r.close();
    replicas = [];
    await idp?.close();
    await sentinel?.stop();
  });

  const get = (replica: InProcessService) =>
    httpRequest(`${replica.url}/tokens/deals.client`, {
      headers: { authorization: `Bearer ${KEY}` },
    });

  it('vends through Sentinel with one IdP request for a burst over two replicas, stored on the master', async () => {
    idp.resetStats();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => get(replicas[i % 2])));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(new Set(answers.map((a) => a.json().access_token)).size).toBe(1);
    expect(idp.stats().tokenRequests).toBe(1);
    expect(await askRedis(sentinel.masterPort, (r) => r.get(tokenKey))).toMatch(/^\d+\|\d+\|v1\./);
  });

  it('survives the master being killed under load and writes to the promoted replica', async () => {
    const failures: number[] = [];
    let served = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const answers = await Promise.all(replicas.map(get));
        for (const a of answers) {
          if (a.status === 200) served++;
          else failures.push(a.status);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    await sentinel.killMaster();
    const deadline = Date.now() + 30_000;
    while ((await sentinel.currentMasterPort()) !== sentinel.replicaPort) {
      if (Date.now() > deadline) throw new Error('no failover within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }

    // Refresh resumes on the new master: a forced refresh is written there.
    let written: string | null = null;
    const writeDeadline = Date.now() + 20_000;
    while (written === null && Date.now() < writeDeadline) {
      const refreshed = await httpRequest(`${replicas[0].url}/admin/clients/deals.client/refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      expect(refreshed.status).toBe(200);
      const value = await askRedis(sentinel.replicaPort, (r) => r.get(tokenKey));
      const expiry = value ? Number(value.split('|')[0]) : 0;
      // Redis stamps the expiry in its own time; the answer shows this host's wall clock plus
      // the remaining life: the same instant to within the round trips.
      if (Math.abs(expiry - Date.parse(refreshed.json().expiresAt)) <= 200) written = value;
      else await new Promise((r) => setTimeout(r, 500));
    }
    stop = true;
    await load;

    expect(written).not.toBeNull();
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(20);
  }, 90_000);
});

/** The clients of the failover cases (the shared cases have their own). */
const FAILOVER_CLIENT = 'sentinel-failover.client';
const CRASH_CLIENT = 'sentinel-crash.client';

/**
 * Fleet-wide invalidation through Sentinel (README "Fleet-wide invalidation"): 3 replica
 * processes on their own master + replica + 3 Sentinels. An admin refresh or a rejection report on
 * one reaches the others within 1 s; a paused replica re-checks the durable marker when it
 * resumes; after a failover, with or without a crash of the master, the fleet channel (a
 * subscriber connection of its own in every replica) follows the new master and an invalidation
 * still reaches every replica.
 */
describeFleetInvalidation<RedisSentinelUnderTest>({
  name: 'Redis Sentinel',
  clientPrefix: 'sentinel',
  extraClients: [FAILOVER_CLIENT, CRASH_CLIENT],
  start: () => startRedisSentinel('tvfleet'),
  redisEnv: (sentinel) => ({
    REDIS_SENTINELS: sentinel.sentinels,
    REDIS_SENTINEL_NAME: sentinel.name,
  }),
  inspectUrl: (sentinel) => `redis://127.0.0.1:${sentinel.masterPort}`,
  warmedUp: async (_sentinel, fleet, clientIds) =>
    (await Promise.all(clientIds.map((c) => fleet.storedExpiry(c)))).every(Boolean),
  stop: (sentinel) => sentinel.stop(),
  casesAfter(run) {
    it('after a failover without a crash (SENTINEL FAILOVER), an invalidation still reaches every replica within 1 s', async () => {
      const { topology: sentinel, fleet } = run;
      await sentinel.failover();
      expect(await sentinel.currentMasterPort()).toBe(sentinel.replicaPort);
      // Sentinel closed the demoted master's clients: every subscriber moved to the new master.
      await expectInvalidationOnNewMaster(fleet, sentinel.replicaPort, FAILOVER_CLIENT);
    }, 90_000);

    it('after the master is killed and the replica promoted, an invalidation still reaches every replica within 1 s', async () => {
      const { topology: sentinel, fleet } = run;
      // The master now is the one promoted above; the first master, its replica, takes over.
      await sentinel.killCurrentMaster();
      await waitFor(
        'the failover',
        async () => (await sentinel.currentMasterPort()) === sentinel.masterPort,
        30_000,
        200,
      );
      await expectInvalidationOnNewMaster(fleet, sentinel.masterPort, CRASH_CLIENT);
    }, 90_000);
  },
});

/**
 * After a failover to the server at `port`: every replica's fleet channel is back there, an
 * admin refresh on one replica reaches every replica within 1 s, and the new token was written
 * to the new master.
 */
async function expectInvalidationOnNewMaster(
  fleet: Fleet,
  port: number,
  clientId: string,
): Promise<void> {
  expect(await fleetChannelOn(fleet, port)).toBe(3);
  await expectInvalidationReachesFleet(fleet, clientId, 'admin-refresh');
  const stored = await askRedis(port, (r) => r.get(fleet.tokenKey(clientId)));
  expect(stored).toMatch(/^\d+\|\d+\|v1\./);
}

/**
 * Waits until every replica's fleet channel is back on the server at `port` (the new master):
 * its subscriber is there (PUBSUB NUMSUB) and its heartbeats are published there; then for a
 * few heartbeats, so each replica has heard the others again. Returns the replicas heard.
 */
async function fleetChannelOn(fleet: Fleet, port: number): Promise<number> {
  const { channel, heard, disconnect } = await listenForHeartbeats(fleet, port);
  try {
    // Each subscriber reconnects with a capped backoff (README "Redis Sentinel and Cluster").
    await waitFor(
      `every replica's subscriber and heartbeat on ${port}`,
      async () => {
        const [, subscribers] = (await askRedis(port, (r) => r.pubsub('NUMSUB', channel))) as [
          string,
          number,
        ];
        // The replicas' subscribers and this listener.
        return subscribers === fleet.replicas.length + 1 && heard.size >= fleet.replicas.length;
      },
      10_000,
      50,
    );
    // Three heartbeats (one every 150 ms, README "Fleet-wide invalidation").
    await new Promise((r) => setTimeout(r, 450));
    return heard.size;
  } finally {
    disconnect();
  }
}
