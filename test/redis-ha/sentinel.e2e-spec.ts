import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  askRedis,
  httpRequest,
  type InProcessService,
  type RedisSentinelUnderTest,
  startRedisSentinel,
  startService,
  testEncryptionKeys,
} from '../support';

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
