import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { stringify } from 'yaml';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { get } from './load';
import {
  K8sSecretVolume,
  killAllReplicas,
  type Replica,
  sha256Hex,
  sleep,
  startService,
  testEncryptionKeys,
  waitFor,
} from '../support';

/**
 * Caller revocation on a fleet (README "Rotation and reload"): three replicas (the production
 * entry point) on one Redis read the same caller-digests Secret volume. Emptying or deleting a
 * caller's `keySha256File` revokes its key on every replica within 3 s, also while another
 * client's secret file is missing (which makes a whole-configuration reload invalid).
 */
const REPLICAS = 3;
const REVOCATION_DEADLINE_MS = 3_000;
const CLIENT = 'revocation.client';
const OTHER_CLIENT = 'revocation-other.client';
const SECRETS = { [CLIENT]: 'revocation-secret-0001', [OTHER_CLIENT]: 'revocation-secret-0002' };
const KEY = 'revocation-caller-key-0001-aaaaaaaaaaaaaaaa';
const KEY_KEPT = 'revocation-caller-key-0002-bbbbbbbbbbbbbbbb';

describe('caller revocation through keySha256File on a fleet (e2e)', () => {
  let idp: RunningSandbox;
  let dir: string;
  let callers: K8sSecretVolume;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: Object.entries(SECRETS).map(([clientId, secret]) => ({ clientId, secret })),
      expiresIn: 1200,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-revocation-'));
    for (const [clientId, secret] of Object.entries(SECRETS)) {
      writeFileSync(join(dir, clientId), `${secret}\n`);
    }
    callers = K8sSecretVolume.create(join(dir, 'callers'), { deals: `${sha256Hex(KEY)}\n` });
    const configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      stringify({
        environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
        clients: Object.keys(SECRETS).map((clientId) => ({
          clientId,
          environment: 'uat',
          secretFile: join(dir, clientId),
        })),
        callers: [
          { name: 'deals', keySha256File: callers.path('deals'), clients: [CLIENT] },
          { name: 'kept', keySha256: [sha256Hex(KEY_KEPT)], clients: [CLIENT] },
        ],
      }),
    );
    const store = {
      redis: true,
      keyPrefix: `tv-revocation-${randomUUID()}:`,
      encryptionKeys: testEncryptionKeys(),
    };
    replicas = await Promise.all(
      Array.from({ length: REPLICAS }, (_, i) =>
        startService({ run: 'process', configPath, ...store, name: `replica-${i}` }),
      ),
    );
  }, 90_000);

  afterAll(async () => {
    await killAllReplicas();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const status = async (replica: Replica, key: string): Promise<number> =>
    (await get(`${replica.url}/tokens/${CLIENT}`, key)).status;

  /**
   * Milliseconds until each replica answers `expected` for the key. Each replica is polled
   * until it does, then left alone: a refused key counts against the source's failed-auth limit.
   */
  const timesUntil = async (key: string, expected: number, since: number): Promise<number[]> =>
    Promise.all(
      replicas.map(async (replica) => {
        const deadline = since + REVOCATION_DEADLINE_MS * 4;
        for (;;) {
          if ((await status(replica, key)) === expected) return Date.now() - since;
          if (Date.now() > deadline) return Infinity;
          await sleep(50);
        }
      }),
    );

  it('serves the caller on every replica before anything changes', async () => {
    for (const replica of replicas) {
      expect(await status(replica, KEY)).toBe(200);
      expect(await status(replica, KEY_KEPT)).toBe(200);
    }
  });

  it("an emptied digest file revokes the key on every replica within 3 s, while another client's secret file is missing", async () => {
    rmSync(join(dir, OTHER_CLIENT));
    const since = Date.now();
    callers.update({ deals: '' });

    const times = await timesUntil(KEY, 401, since);

    expect(times.every((ms) => ms <= REVOCATION_DEADLINE_MS)).toBe(true);
    for (const replica of replicas) {
      expect(await status(replica, KEY_KEPT)).toBe(200);
      expect((await get(`${replica.url}/health/ready`)).status).toBe(200);
      const lines = replica.logs;
      expect(lines.some((l) => l.includes('"caller keys reloaded"'))).toBe(true);
      expect(lines.some((l) => l.includes('caller key files refused'))).toBe(false);
      // The caller left with no key is named, so an operator sees the revocation took.
      expect(
        lines.some((l) => l.includes('callers without any key') && l.includes('"deals"')),
      ).toBe(true);
    }
    writeFileSync(join(dir, OTHER_CLIENT), `${SECRETS[OTHER_CLIENT]}\n`);
  }, 30_000);

  it('a digest given back is accepted again, and a deleted digest file revokes it within 3 s', async () => {
    // Polling a refused key would trip the failed-auth limit: the reload log says when to look.
    const reloads = (replica: Replica): number =>
      replica.logs.filter((l) => l.includes('"caller keys reloaded"')).length;
    const before = replicas.map(reloads);
    callers.update({ deals: `${sha256Hex(KEY)}\n` });
    await waitFor(
      'every replica to re-read the caller keys',
      () => Promise.resolve(replicas.every((r, i) => reloads(r) > before[i]) || undefined),
      REVOCATION_DEADLINE_MS * 4,
      50,
    );
    for (const replica of replicas) expect(await status(replica, KEY)).toBe(200);

    const since = Date.now();
    callers.update({}); // the key removed from the Secret: the file is gone from the volume

    const times = await timesUntil(KEY, 401, since);

    expect(times.every((ms) => ms <= REVOCATION_DEADLINE_MS)).toBe(true);
    for (const replica of replicas) {
      expect(await status(replica, KEY_KEPT)).toBe(200);
      for (const secret of [KEY, KEY_KEPT, ...Object.values(SECRETS)]) {
        expect(replica.logs.filter((l) => l.includes(secret))).toEqual([]);
      }
    }
  }, 30_000);
});
