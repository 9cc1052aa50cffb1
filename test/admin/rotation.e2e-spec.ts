import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { CallerLoad, get } from './load';
import {
  type InProcessService,
  K8sSecretVolume,
  sleep,
  startService,
  testEncryptionKeys,
  waitFor,
  writeServiceConfig,
} from '../support';

/**
 * Secret rotation through a Kubernetes-style Secret volume (the kubelet's `..data` symlink
 * swap), README "Rotation and reload": a changed secret is seen without restart (asserted
 * within 10 s here), tried
 * against the IdP before adoption, and a secret the IdP refuses never replaces the working one.
 * Tokens live 8 s (refresh at half-life) so refreshes happen while the tests run.
 */
const ROT_CLIENT = 'rot.client';
const WRONG_CLIENT = 'wrongmount.client';
const SECRET_V1 = 'rot-secret-v1-Qm9vdHN0cmFw';
const SECRET_V2 = 'rot-secret-v2-Um90YXRlZA';
const WRONG_ONE = 'wrongmount-secret-v1-Z29vZA';
const WRONG_MOUNTED = 'wrongmount-secret-NOT-AT-THE-IdP-bWlzdGFrZQ';
const KEY_CALLER = 'rotation-caller-key-0001-aaaaaaaaaaaaaaaa';
const KEY_ADMIN = 'rotation-admin-key-0002-bbbbbbbbbbbbbbbbb';
const TOKEN_LIFETIME_S = 8;
const ROTATION_DEADLINE_MS = 10_000;

interface AdminClient {
  clientId: string;
  environment: string;
  hasToken: boolean;
  secretFingerprint: string;
  secretCandidatePending: boolean;
  lastRotationAt?: string;
  lastRotationError?: { code: string; message: string; at: string };
}

describe('secret rotation through a Kubernetes Secret volume (e2e)', () => {
  let idp: RunningSandbox;
  let dir: string;
  const apps: InProcessService[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: ROT_CLIENT, secret: SECRET_V1 },
        { clientId: WRONG_CLIENT, secret: WRONG_ONE },
      ],
      expiresIn: TOKEN_LIFETIME_S,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-rotation-'));
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const configFor = (name: string, clientId: string, volume: K8sSecretVolume): string => {
    const path = join(dir, `${name}.yaml`);
    writeServiceConfig(path, {
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: [{ clientId, environment: 'uat', secretFile: volume.path(clientId) }],
      callers: [
        { name: 'caller', keys: [KEY_CALLER], clients: [clientId] },
        { name: 'ops', keys: [KEY_ADMIN], clients: [], admin: true },
      ],
      refresh: { ratio: 0.5, minTtlSeconds: 1 },
    });
    return path;
  };

  /**
   * Every line the service wrote in this process. In-process apps share Nest's static logger
   * (the last app's `useLogger` receives every app's `new Logger(...)` lines: watcher,
   * rotation, scheduler), so per-app captures are not per-app for those lines.
   */
  const allLines = (): string[] => apps.flatMap((a) => a.logs.lines);

  const adminBodies: string[] = [];
  const adminView = async (app: InProcessService, clientId: string): Promise<AdminClient> => {
    const res = await get(`${app.url}/admin/clients`, KEY_ADMIN);
    expect(res.status).toBe(200);
    adminBodies.push(res.text);
    const view = (res.json().clients as AdminClient[]).find((c) => c.clientId === clientId);
    if (!view) throw new Error(`${clientId} is not in the admin view`);
    return view;
  };

  it('lays out the volume like the kubelet and swaps versions atomically through ..data', () => {
    const volume = K8sSecretVolume.create(join(dir, 'layout'), { 'a.client': 'one\n' });
    const first = volume.currentVersion()!;
    expect(first).toMatch(/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$/);
    expect(volume.entries()).toEqual(['..data', first, 'a.client'].sort());
    expect(lstatSync(volume.path('a.client')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(volume.path('a.client'))).toBe(join('..data', 'a.client'));
    expect(lstatSync(join(volume.dir, first, 'a.client')).isFile()).toBe(true);
    expect(readFileSync(volume.path('a.client'), 'utf8')).toBe('one\n');

    volume.update({ 'a.client': 'two\n', 'b.client': 'bee' });
    const second = volume.currentVersion()!;
    expect(second).not.toBe(first);
    // The old version is gone, no ..data_tmp is left behind, the link itself was never rewritten.
    expect(volume.entries()).toEqual(['..data', second, 'a.client', 'b.client'].sort());
    expect(readlinkSync(volume.path('a.client'))).toBe(join('..data', 'a.client'));
    expect(readFileSync(volume.path('a.client'), 'utf8')).toBe('two\n');
    expect(readFileSync(volume.path('b.client'), 'utf8')).toBe('bee');

    volume.update({ 'b.client': 'bee2' });
    expect(volume.entries()).toEqual(['..data', volume.currentVersion()!, 'b.client'].sort());
  });

  it('adopts a secret rotated at the IdP and on disk within 10 s on both replicas, with no caller failure', async () => {
    const volume = K8sSecretVolume.create(join(dir, 'rot-volume'), {
      [ROT_CLIENT]: `${SECRET_V1}\n`,
    });
    const configPath = configFor('rot', ROT_CLIENT, volume);
    // Two replicas of one fleet: one Redis, one key prefix, one encryption key.
    const store = {
      redis: true,
      keyPrefix: `tv-test-rotation-${randomUUID()}:`,
      encryptionKeys: testEncryptionKeys(),
    };
    const a = await startService({ configPath, ...store });
    apps.push(a);
    const b = await startService({ configPath, ...store });
    apps.push(b);
    const replicas = [a, b];

    const load = new CallerLoad(
      replicas.map((r) => `${r.url}/tokens/${ROT_CLIENT}`),
      KEY_CALLER,
      20,
    );
    try {
      await sleep(3000);
      const before = await Promise.all(replicas.map((r) => adminView(r, ROT_CLIENT)));
      for (const view of before) {
        expect(view).toMatchObject({ hasToken: true, secretCandidatePending: false });
      }
      // One encryption key per fleet: every replica shows the same fingerprint.
      expect(before[1].secretFingerprint).toBe(before[0].secretFingerprint);
      const oldFingerprint = before[0].secretFingerprint;

      // Rotation: the IdP stops accepting the old secret at once; the kubelet swaps ..data.
      const swapAt = Date.now();
      idp.setClientSecret(ROT_CLIENT, SECRET_V2);
      volume.update({ [ROT_CLIENT]: `${SECRET_V2}\n` });

      const after = await waitFor(
        'the new secret on both replicas',
        async () => {
          const views = await Promise.all(replicas.map((r) => adminView(r, ROT_CLIENT)));
          return views.every((v) => v.secretFingerprint !== oldFingerprint) ? views : undefined;
        },
        ROTATION_DEADLINE_MS,
        200,
      );
      const seenAfterMs = Date.now() - swapAt;
      expect(seenAfterMs).toBeLessThanOrEqual(ROTATION_DEADLINE_MS);
      expect(after[1].secretFingerprint).toBe(after[0].secretFingerprint);
      for (const view of after) {
        expect(view.secretCandidatePending).toBe(false);
        expect(Date.parse(view.lastRotationAt!)).toBeGreaterThanOrEqual(swapAt - 5);
      }
      // The IdP issued a token with the new secret after the swap (the old one is refused there).
      const issuedAfterSwap = idp
        .requests()
        .filter((r) => r.clientId === ROT_CLIENT && r.at >= swapAt && r.status === 200);
      expect(issuedAfterSwap.length).toBeGreaterThan(0);

      // Keep the load on for more than a token lifetime: refreshes now run on the new secret.
      const adoptedAt = Date.now();
      await sleep(TOKEN_LIFETIME_S * 1000 + 1000);
      const later = idp.requests().filter((r) => r.clientId === ROT_CLIENT && r.at > adoptedAt);
      expect(later.length).toBeGreaterThan(0);
      expect(later.filter((r) => r.status !== 200)).toEqual([]);
      const final = await Promise.all(replicas.map((r) => adminView(r, ROT_CLIENT)));
      for (const view of final) {
        expect(view.secretFingerprint).toBe(after[0].secretFingerprint);
        expect(view.hasToken).toBe(true);
      }
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    // Served throughout: both replicas answered 200 in every second of the run.
    expect(load.secondsWithoutAnswer()).toEqual([]);
    // Refreshes happened during the run: callers saw several successive tokens.
    expect(load.tokens.size).toBeGreaterThanOrEqual(3);
    const lines = allLines().join('\n');
    expect(lines).toContain('client secret rotated');
    for (const secret of [SECRET_V1, SECRET_V2]) expect(lines).not.toContain(secret);
  }, 60_000);

  it('keeps the working secret and keeps serving when the IdP refuses the secret mounted on disk', async () => {
    const volume = K8sSecretVolume.create(join(dir, 'wrong-volume'), {
      [WRONG_CLIENT]: `${WRONG_ONE}\n`,
    });
    const app = await startService({ configPath: configFor('wrong', WRONG_CLIENT, volume) });
    apps.push(app);
    const load = new CallerLoad([`${app.url}/tokens/${WRONG_CLIENT}`], KEY_CALLER, 20);
    try {
      await sleep(2000);
      const before = await adminView(app, WRONG_CLIENT);
      expect(before).toMatchObject({ hasToken: true, secretCandidatePending: false });

      const mountedAt = Date.now();
      volume.update({ [WRONG_CLIENT]: `${WRONG_MOUNTED}\n` }); // the IdP still knows WRONG_ONE
      const refused = await waitFor(
        'the refused candidate in /admin/clients',
        async () => {
          const view = await adminView(app, WRONG_CLIENT);
          return view.lastRotationError ? view : undefined;
        },
        ROTATION_DEADLINE_MS,
        200,
      );
      expect(refused.secretCandidatePending).toBe(true);
      expect(refused.secretFingerprint).toBe(before.secretFingerprint);
      expect(refused.lastRotationAt).toBeUndefined();
      expect(refused.lastRotationError).toEqual({
        code: 'upstream_rejected',
        message: 'The identity provider refused the credentials or scope (invalid_client).',
        at: expect.any(String),
      });
      expect(Date.parse(refused.lastRotationError!.at)).toBeGreaterThanOrEqual(mountedAt - 5);

      // More than a token lifetime later, the working secret still refreshes and serves.
      const refusedAt = Date.now();
      await sleep(TOKEN_LIFETIME_S * 1000 + 1000);
      const refreshes = idp
        .requests()
        .filter((r) => r.clientId === WRONG_CLIENT && r.at > refusedAt && r.status === 200);
      expect(refreshes.length).toBeGreaterThan(0);
      const still = await adminView(app, WRONG_CLIENT);
      expect(still).toMatchObject({
        hasToken: true,
        secretCandidatePending: true,
        secretFingerprint: before.secretFingerprint,
      });
      expect(still.lastRotationError?.code).toBe('upstream_rejected');

      // Ops put the right secret back: the candidate is dropped, the fingerprint never moved.
      volume.update({ [WRONG_CLIENT]: `${WRONG_ONE}\n` });
      const settled = await waitFor(
        'the candidate to be dropped',
        async () => {
          const view = await adminView(app, WRONG_CLIENT);
          return view.secretCandidatePending ? undefined : view;
        },
        ROTATION_DEADLINE_MS,
        200,
      );
      expect(settled.secretFingerprint).toBe(before.secretFingerprint);
    } finally {
      await load.stop();
    }
    expect(load.failures).toEqual([]);
    // Served throughout: a 200 in every second of the run.
    expect(load.secondsWithoutAnswer()).toEqual([]);
    // The refused secret is nowhere: no log line, no answer (tokens or admin) carries it.
    const lines = allLines();
    expect(lines.some((l) => l.includes('new client secret refused'))).toBe(true);
    expect(lines.filter((l) => l.includes(WRONG_MOUNTED))).toEqual([]);
    expect(lines.filter((l) => l.includes(WRONG_ONE))).toEqual([]);
    expect([...load.bodies, ...adminBodies].filter((b) => b.includes(WRONG_MOUNTED))).toEqual([]);
  }, 60_000);
});
