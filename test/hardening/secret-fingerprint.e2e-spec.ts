import { createHash, createHmac } from 'node:crypto';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  httpRequest,
  type InProcessService,
  requireTestRedisUrl,
  startService,
  testEncryptionKeys,
} from '../support';

/**
 * Secret fingerprints in /admin/clients (README "Logs and metrics") are keyed: with Redis by a
 * key derived from the fleet's encryption key (replicas agree), in memory mode by a random key
 * per process. A fixed key would let anyone who saw a fingerprint test guessed secrets offline.
 */
const SECRET = 'fingerprint-secret-0001';
const KEY = 'fingerprint-admin-key-0001-aaaaaaaaaaaaaa';

describe('secret fingerprints in /admin/clients (e2e)', () => {
  let idp: RunningSandbox;
  const vendors: InProcessService[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [{ clientId: 'fp.client', secret: SECRET }] });
  });

  afterAll(async () => {
    for (const v of vendors) await v.close();
    await idp?.close();
  });

  const start = async (redis?: { url: string; keys: string }): Promise<InProcessService> => {
    const v = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: idp.tokenUrl } },
      clients: [{ clientId: 'fp.client', environment: 'uat', secret: SECRET }],
      callers: [{ name: 'ops', keys: [KEY], clients: ['*'], admin: true }],
      ...(redis ? { redis: redis.url, encryptionKeys: redis.keys } : {}),
    });
    vendors.push(v);
    return v;
  };
  const fingerprintOf = async (v: InProcessService): Promise<string> => {
    const res = await httpRequest(`${v.url}/admin/clients`, { key: KEY });
    expect(res.status).toBe(200);
    return (res.json() as { clients: { secretFingerprint: string }[] }).clients[0]
      .secretFingerprint;
  };

  it('in memory mode, differs between processes and from the old fixed-key fingerprint', async () => {
    const [a, b] = [await fingerprintOf(await start()), await fingerprintOf(await start())];
    expect(a).toMatch(/^[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    const fixedKey = createHash('sha256').update('token-vendor/secret-fingerprint/v1').digest();
    const offline = createHmac('sha256', fixedKey).update(SECRET).digest('hex').slice(0, 8);
    expect([a, b]).not.toContain(offline);
  });

  it('with Redis, agrees between replicas sharing the encryption key', async () => {
    const shared = { url: requireTestRedisUrl(), keys: testEncryptionKeys() };
    const [a, b] = [
      await fingerprintOf(await start(shared)),
      await fingerprintOf(await start(shared)),
    ];
    expect(a).toBe(b);
    const other = await fingerprintOf(await start({ ...shared, keys: testEncryptionKeys() }));
    expect(other).not.toBe(a);
  });
});
