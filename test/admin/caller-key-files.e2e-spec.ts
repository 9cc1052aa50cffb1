import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { get } from './load';
import {
  type InProcessService,
  K8sSecretVolume,
  sha256Hex,
  sleep,
  startService,
  waitFor,
} from '../support';

/**
 * Caller keys rotated through a Kubernetes Secret volume (README "Rotation and reload"): a
 * caller's `keySha256File` lives in a mounted Secret; the kubelet's `..data` swap is seen
 * within 10 s without restart (the callers' digest files are re-read), and an invalid file is
 * refused with the running callers kept, logged once while it lasts.
 */
const CLIENT = 'keys.client';
const CLIENT_SECRET = 'caller-keys-client-secret-0001';
const KEY_OLD = 'caller-key-old-0001-aaaaaaaaaaaaaaaaaaaaaa';
const KEY_NEW = 'caller-key-new-0002-bbbbbbbbbbbbbbbbbbbbbb';
const KEY_ADMIN = 'caller-key-admin-0003-ccccccccccccccccccc';
const GARBAGE = 'this-is-a-key-pasted-by-mistake-GARBAGE-0004';
const DEADLINE_MS = 10_000;

describe('caller keys from a Kubernetes Secret volume (e2e)', () => {
  let idp: RunningSandbox;
  let dir: string;
  let app: InProcessService | undefined;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [{ clientId: CLIENT, secret: CLIENT_SECRET }],
      expiresIn: 1200,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-caller-keys-'));
  });

  afterAll(async () => {
    await app?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const status = async (key: string): Promise<number> =>
    (await get(`${app!.url}/tokens/${CLIENT}`, key)).status;
  const count = (text: string): number => app!.logs.lines.filter((l) => l.includes(text)).length;
  /**
   * Waits for the next log line holding `text`. Polling with a refused key would trip the
   * failed-authentication limit (10 a minute per source), so the log says when to look.
   */
  const nextLog = async (text: string, what: string): Promise<string> => {
    const before = count(text);
    await waitFor(
      what,
      () => Promise.resolve(count(text) > before ? true : undefined),
      DEADLINE_MS,
      100,
    );
    return app!.logs.lines.filter((l) => l.includes(text))[before];
  };

  it('accepts a key added by a ..data swap within 10 s, drops a removed one, and refuses a garbage file', async () => {
    writeFileSync(join(dir, CLIENT), `${CLIENT_SECRET}\n`);
    const callers = K8sSecretVolume.create(join(dir, 'callers'), {
      deals: `# deals-service\n${sha256Hex(KEY_OLD)}\n`,
    });
    const configPath = join(dir, 'config.yaml');
    writeFileSync(
      configPath,
      stringify({
        environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
        clients: [{ clientId: CLIENT, environment: 'uat', secretFile: join(dir, CLIENT) }],
        callers: [
          { name: 'deals', keySha256File: callers.path('deals'), clients: [CLIENT] },
          { name: 'ops', keySha256: [sha256Hex(KEY_ADMIN)], clients: [], admin: true },
        ],
      }),
    );
    app = await startService({ configPath });

    expect(await status(KEY_OLD)).toBe(200);
    expect(await status(KEY_NEW)).toBe(401);

    // Rotation, step 1: the new key's digest is added beside the old one.
    let swapAt = Date.now();
    let reloaded = nextLog('"caller keys reloaded"', 'the reload after adding a key');
    callers.update({ deals: `${sha256Hex(KEY_OLD)}\n${sha256Hex(KEY_NEW)}\n` });
    await reloaded;
    expect(await status(KEY_NEW)).toBe(200);
    expect(Date.now() - swapAt).toBeLessThanOrEqual(DEADLINE_MS);
    expect(await status(KEY_OLD)).toBe(200);

    // Step 2: the old key's digest is removed; the old key stops working.
    swapAt = Date.now();
    reloaded = nextLog('"caller keys reloaded"', 'the reload after removing a key');
    callers.update({ deals: `${sha256Hex(KEY_NEW)}\n` });
    await reloaded;
    expect(await status(KEY_OLD)).toBe(401);
    expect(Date.now() - swapAt).toBeLessThanOrEqual(DEADLINE_MS);
    expect(await status(KEY_NEW)).toBe(200);

    // A garbage file is refused: the running callers stay, the refusal is logged.
    const refused = nextLog('caller key files refused', 'the refused read in the log');
    callers.update({ deals: `${GARBAGE}\n` });
    const refusal = await refused;
    expect(refusal).toContain('callers[0].keySha256File: line 1 is not a SHA-256 digest');
    await sleep(3000); // more than a poll later: still the last valid configuration
    expect(await status(KEY_NEW)).toBe(200);
    expect(await status(KEY_OLD)).toBe(401);
    expect(await status(GARBAGE)).toBe(401);
    expect((await get(`${app.url}/health/ready`)).status).toBe(200);

    // Fixed: the next swap is adopted again.
    reloaded = nextLog('"caller keys reloaded"', 'the reload after the fix');
    callers.update({ deals: `${sha256Hex(KEY_OLD)}\n` });
    await reloaded;
    expect(await status(KEY_OLD)).toBe(200);
    expect(await status(KEY_NEW)).toBe(401);

    const lines = app.logs.lines;
    // Retried every poll while refused, but logged once while the same refusal lasts.
    expect(lines.filter((l) => l.includes('caller key files refused'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('caller key file changed')).length).toBe(4);
    for (const secret of [GARBAGE, KEY_OLD, KEY_NEW, KEY_ADMIN, CLIENT_SECRET]) {
      expect(lines.filter((l) => l.includes(secret))).toEqual([]);
    }
  }, 60_000);
});
