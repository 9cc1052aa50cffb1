import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { get, post } from './load';
import {
  type InProcessService,
  type Replica,
  type ServiceConfigSpec,
  startService,
  type TestClient,
  waitFor,
  writeServiceConfig,
} from '../support';

/**
 * Configuration reload (README "Rotation and reload", "API" operations): POST /admin/reload
 * and SIGHUP re-read the file; a new client serves, a removed one is unknown; an invalid file
 * is refused with a message naming the field and the running configuration keeps serving.
 */
const SECRETS: Record<string, string> = {
  'keep.client': 'reload-keep-secret-0001',
  'gone.client': 'reload-gone-secret-0002',
  'new.client': 'reload-new-secret-0003',
};
const INLINE_SECRET = 'reload-inline-secret-must-never-show-0004';
const KEY_CALLER = 'reload-caller-key-0001-aaaaaaaaaaaaaaaaaa';
const KEY_ADMIN = 'reload-admin-key-0002-bbbbbbbbbbbbbbbbbbb';
const UNKNOWN_CLIENT = {
  error: 'unknown_client',
  message: 'No such client is available to this caller.',
};

describe('configuration reload (e2e)', () => {
  let idp: RunningSandbox;
  let dir: string;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: Object.entries(SECRETS).map(([clientId, secret]) => ({ clientId, secret })),
      expiresIn: 1200,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-reload-'));
    for (const [clientId, secret] of Object.entries(SECRETS)) {
      writeFileSync(join(dir, clientId), `${secret}\n`);
    }
  });

  afterAll(async () => {
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const spec = (clientIds: string[], extra: TestClient[] = []): ServiceConfigSpec => ({
    environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
    clients: [
      ...clientIds.map((clientId) => ({
        clientId,
        environment: 'uat',
        secretFile: join(dir, clientId),
      })),
      ...extra,
    ],
    callers: [
      { name: 'caller', keys: [KEY_CALLER], clients: ['*'] },
      { name: 'ops', keys: [KEY_ADMIN], clients: [], admin: true },
    ],
  });

  const inlineSecretSpec = (): ServiceConfigSpec =>
    spec(
      ['keep.client', 'new.client'],
      [
        {
          clientId: 'inline.client',
          environment: 'uat',
          secretFile: join(dir, 'keep.client'),
          fields: { secret: INLINE_SECRET },
        },
      ],
    );

  describe('POST /admin/reload (in-process)', () => {
    let svc: InProcessService;
    let configPath: string;

    beforeAll(async () => {
      configPath = join(dir, 'in-process.yaml');
      writeServiceConfig(configPath, spec(['keep.client', 'gone.client']));
      svc = await startService({ configPath, scheduler: false });
    });

    afterAll(async () => {
      await svc?.close();
    });

    const token = (clientId: string) => get(`${svc.url}/tokens/${clientId}`, KEY_CALLER);
    const reload = () => post(`${svc.url}/admin/reload`, KEY_ADMIN);
    const adminClients = async (): Promise<string[]> => {
      const res = await get(`${svc.url}/admin/clients`, KEY_ADMIN);
      expect(res.status).toBe(200);
      return (res.json().clients as { environment: string; clientId: string }[])
        .map((c) => `${c.environment}/${c.clientId}`)
        .sort();
    };

    it('adds and removes clients: the new one serves 200, the removed one answers 404', async () => {
      expect((await token('keep.client')).status).toBe(200);
      expect((await token('gone.client')).status).toBe(200);
      const before = await token('new.client');
      expect(before.status).toBe(404);
      expect(before.json()).toEqual(UNKNOWN_CLIENT);

      writeServiceConfig(configPath, spec(['keep.client', 'new.client']));
      const res = await reload();
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.json()).toEqual({
        clients: 2,
        callers: 2,
        added: ['uat/new.client'],
        removed: ['uat/gone.client'],
        changed: [],
        replicas: [],
      });

      const added = await token('new.client');
      expect(added.status).toBe(200);
      expect(added.json()).toMatchObject({ client_id: 'new.client', environment: 'uat' });
      const removed = await token('gone.client');
      expect(removed.status).toBe(404);
      expect(removed.json()).toEqual(UNKNOWN_CLIENT);
      expect((await token('keep.client')).status).toBe(200);
      expect(await adminClients()).toEqual(['uat/keep.client', 'uat/new.client']);
      const audit = svc.logs.audit().filter((e) => e.clientId === 'gone.client');
      expect(audit.at(-1)).toMatchObject({ outcome: 'unknown_client', reason: 'not_configured' });
    });

    it('refuses a file with an inline secret with 400 naming the field, and keeps serving the running configuration', async () => {
      writeServiceConfig(configPath, inlineSecretSpec());
      const res = await reload();
      expect(res.status).toBe(400);
      expect(res.headers['cache-control']).toBe('no-store');
      const body = res.json();
      expect(Object.keys(body).sort()).toEqual(['error', 'message']);
      expect(body.error).toBe('invalid_request');
      expect(body.message).toContain(
        'clients[2].secret: secrets are never written inline; use secretFile or secretEnv',
      );
      expect(res.text).not.toContain(INLINE_SECRET);

      // The running configuration stays: the client added by the last good reload still serves.
      expect((await token('new.client')).status).toBe(200);
      expect((await token('keep.client')).status).toBe(200);
      expect((await token('gone.client')).status).toBe(404);
      const inline = await token('inline.client');
      expect(inline.status).toBe(404);
      expect(inline.json()).toEqual(UNKNOWN_CLIENT);
      expect(await adminClients()).toEqual(['uat/keep.client', 'uat/new.client']);
      expect(svc.logs.lines.join('\n')).not.toContain(INLINE_SECRET);
    });

    it('refuses a file whose secret file cannot be read, naming clients[i].secretFile', async () => {
      writeServiceConfig(
        configPath,
        spec(
          ['keep.client', 'new.client'],
          [{ clientId: 'nofile.client', environment: 'uat', secretFile: join(dir, 'missing') }],
        ),
      );
      const res = await reload();
      expect(res.status).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(res.json().message).toContain('clients[2].secretFile: cannot read');
      expect((await token('new.client')).status).toBe(200);
      expect(await adminClients()).toEqual(['uat/keep.client', 'uat/new.client']);

      // A good file afterwards is taken again.
      writeServiceConfig(configPath, spec(['keep.client', 'new.client', 'gone.client']));
      const ok = await reload();
      expect(ok.status).toBe(200);
      expect(ok.json()).toMatchObject({ added: ['uat/gone.client'], removed: [] });
      expect((await token('gone.client')).status).toBe(200);
    });
  });

  /**
   * SIGHUP goes to a real process running the production entry point: inside Jest a signal
   * cannot reach an in-process app (the test's `process` is a copy whose listeners the real
   * process never sees, so SIGHUP would kill the Jest worker).
   */
  describe('SIGHUP (node dist/apps/token-vendor/main.js)', () => {
    let replica: Replica;
    let configPath: string;

    beforeAll(async () => {
      configPath = join(dir, 'process.yaml');
      writeServiceConfig(configPath, spec(['keep.client', 'gone.client']));
      replica = await startService({ run: 'process', configPath, logLevel: 'info' });
    }, 40_000);

    afterAll(async () => {
      await replica?.stop();
    });

    const token = (clientId: string) => get(`${replica.url}/tokens/${clientId}`, KEY_CALLER);

    it('reloads on SIGHUP: the new client serves, the removed one is unknown, the process lives on', async () => {
      expect((await token('gone.client')).status).toBe(200);
      expect((await token('new.client')).status).toBe(404);

      writeServiceConfig(configPath, spec(['keep.client', 'new.client']));
      replica.kill('SIGHUP');
      await waitFor(
        'new.client to serve after SIGHUP',
        async () => ((await token('new.client')).status === 200 ? true : undefined),
        5000,
      );
      const removed = await token('gone.client');
      expect(removed.status).toBe(404);
      expect(removed.json()).toEqual(UNKNOWN_CLIENT);
      expect((await token('keep.client')).status).toBe(200);
      expect(replica.alive).toBe(true);
      expect(replica.logs.some((l) => l.includes('configuration reloaded'))).toBe(true);
      // The SIGHUP wait's own 5 s budget plus the requests around it exceed Jest's default 5 s.
    }, 20_000);

    it('refuses an invalid file on SIGHUP, logs why, and keeps serving the running configuration', async () => {
      writeServiceConfig(configPath, inlineSecretSpec());
      const before = replica.logs.length;
      replica.kill('SIGHUP');
      const refusal = await waitFor(
        'the refusal in the log',
        () =>
          Promise.resolve(
            replica.logs.slice(before).find((l) => l.includes('configuration reload refused')),
          ),
        5000,
      );
      expect(refusal).toContain('clients[2].secret');
      expect(replica.alive).toBe(true);
      expect((await token('new.client')).status).toBe(200);
      expect((await token('keep.client')).status).toBe(200);
      expect((await token('gone.client')).status).toBe(404);
      expect((await token('inline.client')).status).toBe(404);
      const all = replica.logs.join('\n');
      for (const secret of [INLINE_SECRET, ...Object.values(SECRETS), KEY_CALLER, KEY_ADMIN]) {
        expect(all).not.toContain(secret);
      }
      // The refusal wait's own 5 s budget plus the requests after it exceed Jest's default 5 s.
    }, 20_000);
  });
});
