import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { get } from './load';
import {
  httpRequest,
  type InProcessService,
  sha256Hex,
  sleep,
  startService,
  waitFor,
  writeServiceConfig,
} from '../support';

/**
 * The admin API (README "API", the operations table): only admin callers, never a secret or a
 * token in its answers, a forced refresh that costs exactly one IdP request, `Cache-Control:
 * no-store`.
 */
const SECRET_DEALS = 'admin-api-deals-secret-0001';
const SECRET_SHARED = 'admin-api-shared-secret-0002';
const SECRET_WRONG_CONFIGURED = 'admin-api-wrong-secret-0003';
const SECRET_WRONG_AT_IDP = 'admin-api-idp-knows-this-0004';
const KEY_ADMIN = 'admin-api-admin-key-0001-aaaaaaaaaaaaaaaa';
const KEY_SERVICE = 'admin-api-service-key-0002-bbbbbbbbbbbbbb';
const FORBIDDEN = { error: 'forbidden', message: 'Only admin callers may use /admin.' };
const UNAUTHORIZED = {
  error: 'unauthorized',
  message: 'A valid caller key is required (Authorization: Bearer <key>).',
};
/** The fields the admin view documents (AdminClientDto, README "API"). */
const DOCUMENTED_FIELDS = [
  'clientId',
  'environment',
  'hasToken',
  'expiresAt',
  'tokenFingerprint',
  'lastRefreshAt',
  'nextRefreshAt',
  'lastError',
  'secretFingerprint',
  'secretCandidatePending',
  'lastRotationAt',
  'lastRotationError',
];
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

interface AdminClient {
  clientId: string;
  environment: string;
  hasToken: boolean;
  expiresAt?: string;
  tokenFingerprint?: string;
  lastRefreshAt?: string;
  nextRefreshAt?: string;
  lastError?: { code: string; message: string; at: string };
  secretFingerprint: string;
  secretCandidatePending: boolean;
}

describe('admin API (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  let dir: string;
  /** Every access token this suite was handed, and every admin answer it received. */
  const tokensSeen = new Set<string>();
  const adminTexts: string[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'deals.client', secret: SECRET_DEALS },
        { clientId: 'shared.client', secret: SECRET_SHARED },
        { clientId: 'wrong.client', secret: SECRET_WRONG_AT_IDP },
      ],
      expiresIn: 1200,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-admin-'));
    const secretFile = (name: string, secret: string): string => {
      writeFileSync(join(dir, name), `${secret}\n`);
      return join(dir, name);
    };
    const configPath = join(dir, 'config.yaml');
    writeServiceConfig(configPath, {
      environments: {
        uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 },
        production: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 },
      },
      clients: [
        {
          clientId: 'deals.client',
          environment: 'uat',
          secretFile: secretFile('deals', SECRET_DEALS),
        },
        {
          clientId: 'shared.client',
          environment: 'uat',
          secretFile: secretFile('shared', SECRET_SHARED),
        },
        {
          clientId: 'shared.client',
          environment: 'production',
          secretFile: join(dir, 'shared'),
        },
        {
          clientId: 'wrong.client',
          environment: 'uat',
          secretFile: secretFile('wrong', SECRET_WRONG_CONFIGURED),
        },
      ],
      callers: [
        { name: 'ops', keys: [KEY_ADMIN], clients: ['*'], admin: true },
        { name: 'deals-service', keys: [KEY_SERVICE], clients: ['*'] },
      ],
    });
    // Proactive refresh on: start-up warming fills the refresh fields of the view.
    svc = await startService({ configPath, redis: true });
    await waitFor(
      'start-up warming',
      async () => {
        const view = await clients();
        const warm = view.filter((c) => c.clientId !== 'wrong.client').every((c) => c.hasToken);
        const wrongFailed = view.find((c) => c.clientId === 'wrong.client')?.lastError;
        return warm && wrongFailed ? true : undefined;
      },
      10_000,
    );
    // Jest's default 5 s would cut the warm-up wait's own 10 s budget short.
  }, 30_000);

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const adminCall = async (method: 'GET' | 'POST', path: string, key?: string) => {
    const res = await httpRequest(`${svc.url}${path}`, {
      method,
      headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
      localAddress: key === undefined || key === 'not-a-caller-key' ? '127.0.0.21' : undefined,
    });
    adminTexts.push(res.text);
    return res;
  };
  async function clients(): Promise<AdminClient[]> {
    const res = await adminCall('GET', '/admin/clients', KEY_ADMIN);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    return res.json().clients as AdminClient[];
  }
  const view = async (clientId: string, environment = 'uat'): Promise<AdminClient> => {
    const found = (await clients()).find(
      (c) => c.clientId === clientId && c.environment === environment,
    );
    if (!found) throw new Error(`${environment}/${clientId} is not in the admin view`);
    return found;
  };
  const token = async (path: string): Promise<string> => {
    const res = await get(`${svc.url}${path}`, KEY_SERVICE);
    expect(res.status).toBe(200);
    const accessToken = res.json().access_token as string;
    tokensSeen.add(accessToken);
    return accessToken;
  };

  const ENDPOINTS: ['GET' | 'POST', string][] = [
    ['GET', '/admin/clients'],
    ['POST', '/admin/clients/deals.client/refresh'],
    ['POST', '/admin/reload'],
  ];

  it.each(ENDPOINTS)(
    'answers 403 forbidden to a non-admin caller on %s %s',
    async (method, path) => {
      idp.resetStats();
      const res = await adminCall(method, path, KEY_SERVICE);
      expect(res.status).toBe(403);
      expect(res.json()).toEqual(FORBIDDEN);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(idp.stats().tokenRequests).toBe(0);
    },
  );

  it.each(ENDPOINTS)('answers 401 without a caller key on %s %s', async (method, path) => {
    const res = await adminCall(method, path);
    expect(res.status).toBe(401);
    expect(res.json()).toEqual(UNAUTHORIZED);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="token-vendor"');
    expect(res.headers['cache-control']).toBe('no-store');
    const unknown = await adminCall(method, path, 'not-a-caller-key');
    expect(unknown.status).toBe(401);
    expect(unknown.json()).toEqual(UNAUTHORIZED);
  });

  it('lists every client and environment with the documented fields, and never a secret or a token', async () => {
    const served = {
      'uat/deals.client': await token('/tokens/deals.client'),
      'uat/shared.client': await token('/tokens/shared.client?environment=uat'),
      'production/shared.client': await token('/tokens/shared.client?environment=production'),
    };
    const res = await adminCall('GET', '/admin/clients', KEY_ADMIN);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(Object.keys(res.json())).toEqual(['clients']);
    const list = res.json().clients as (AdminClient & Record<string, unknown>)[];
    expect(list.map((c) => `${c.environment}/${c.clientId}`).sort()).toEqual(
      [
        'production/shared.client',
        'uat/deals.client',
        'uat/shared.client',
        'uat/wrong.client',
      ].sort(),
    );
    for (const entry of list) {
      for (const field of Object.keys(entry)) expect(DOCUMENTED_FIELDS).toContain(field);
      expect(typeof entry.hasToken).toBe('boolean');
      expect(entry.secretFingerprint).toMatch(/^[0-9a-f]{8}$/);
      expect(entry.secretCandidatePending).toBe(false);
      expect(entry.lastRefreshAt === undefined || ISO.test(entry.lastRefreshAt)).toBe(true);
      const key = `${entry.environment}/${entry.clientId}` as keyof typeof served;
      if (entry.clientId === 'wrong.client') {
        expect(entry.hasToken).toBe(false);
        expect(entry.expiresAt).toBeUndefined();
        expect(entry.tokenFingerprint).toBeUndefined();
        expect(entry.lastError).toEqual({
          code: 'upstream_rejected',
          message: 'The identity provider refused the credentials or scope (invalid_client).',
          at: expect.stringMatching(ISO),
        });
        continue;
      }
      expect(entry.hasToken).toBe(true);
      expect(entry.expiresAt).toMatch(ISO);
      expect(Date.parse(entry.expiresAt!)).toBeGreaterThan(Date.now() + 1100_000);
      expect(entry.lastRefreshAt).toMatch(ISO);
      expect(entry.nextRefreshAt).toMatch(ISO);
      expect(entry.lastError).toBeUndefined();
      // The fingerprint names the token the caller was given, without being it.
      expect(entry.tokenFingerprint).toBe(sha256Hex(served[key]).slice(0, 8));
    }
    const fingerprint = (env: string, id: string) =>
      list.find((c) => c.environment === env && c.clientId === id)!.secretFingerprint;
    // Same secret, same fingerprint; different secrets, different fingerprints.
    expect(fingerprint('uat', 'shared.client')).toBe(fingerprint('production', 'shared.client'));
    expect(fingerprint('uat', 'deals.client')).not.toBe(fingerprint('uat', 'shared.client'));
  });

  it('POST /admin/clients/:id/refresh revokes the old token and fetches a new one with exactly one IdP request', async () => {
    const old = await token('/tokens/deals.client');
    idp.resetStats();
    const refreshSentAt = Date.now();
    const res = await adminCall('POST', '/admin/clients/deals.client/refresh', KEY_ADMIN);
    const refreshAnsweredAt = Date.now();
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual([
      'clientId',
      'environment',
      'expiresAt',
      'replicas',
      'revocationDurable',
      'revokedTokenFingerprint',
      'tokenFingerprint',
    ]);
    expect(body).toMatchObject({
      clientId: 'deals.client',
      environment: 'uat',
      // One replica: no other answered; the revocation is recorded in the store.
      replicas: [],
      revocationDurable: true,
      revokedTokenFingerprint: sha256Hex(old).slice(0, 8),
    });
    expect(body.expiresAt).toMatch(ISO);
    // The new token's life is counted from the refresh's IdP request: 1199 or 1200 s (the
    // sandbox's exp is in whole seconds, expires-in.rule.ts), so comparing with the old token's
    // expiry says nothing at 1 s resolution. The lower bound gives up the 2 ms a shown expiry can
    // lose to ms truncation (Date.now plus a fractional monotonic remaining life, then new Date:
    // wallTimeOf in @app/clock); the upper bound is the IdP's 1200 s from the latest send time.
    const expiresAt = Date.parse(body.expiresAt);
    expect(expiresAt).toBeGreaterThanOrEqual(refreshSentAt + 1_199_000 - 2);
    expect(expiresAt).toBeLessThanOrEqual(refreshAnsweredAt + 1_200_000);
    expect(body.tokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
    expect(body.tokenFingerprint).not.toBe(sha256Hex(old).slice(0, 8));
    expect(idp.stats().tokenRequests).toBe(1);
    expect(idp.stats().byClient).toEqual({ 'deals.client': 1 });

    // Callers now get the refreshed token; the view shows it.
    const fresh = await token('/tokens/deals.client');
    expect(sha256Hex(fresh).slice(0, 8)).toBe(body.tokenFingerprint);
    const after = await view('deals.client');
    // The same token's expiry: shown times are derived per answer from the monotonic remaining
    // life (README "Which clock decides what"), so two views of one instant may differ by a ms.
    expect(Math.abs(Date.parse(after.expiresAt!) - Date.parse(body.expiresAt))).toBeLessThanOrEqual(
      2,
    );
    expect(after.tokenFingerprint).toBe(body.tokenFingerprint);
    expect(idp.stats().tokenRequests).toBe(1);
  });

  it('refresh chooses the environment with ?environment= and refuses ambiguity and unknown clients', async () => {
    idp.resetStats();
    const ambiguous = await adminCall('POST', '/admin/clients/shared.client/refresh', KEY_ADMIN);
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.json()).toEqual({
      error: 'invalid_request',
      message: 'The client exists in several environments; choose one with ?environment=.',
    });
    expect(ambiguous.headers['cache-control']).toBe('no-store');
    const unknown = await adminCall('POST', '/admin/clients/no-such.client/refresh', KEY_ADMIN);
    expect(unknown.status).toBe(400);
    expect(unknown.json()).toEqual({
      error: 'invalid_request',
      message: 'No such client in the configuration.',
    });
    expect(idp.stats().tokenRequests).toBe(0);

    const prod = await adminCall(
      'POST',
      '/admin/clients/shared.client/refresh?environment=production',
      KEY_ADMIN,
    );
    expect(prod.status).toBe(200);
    expect(prod.json()).toMatchObject({ clientId: 'shared.client', environment: 'production' });
    expect(idp.stats().tokenRequests).toBe(1);

    const rejected = await adminCall('POST', '/admin/clients/wrong.client/refresh', KEY_ADMIN);
    expect(rejected.status).toBe(502);
    expect(rejected.json()).toEqual({
      error: 'upstream_rejected',
      message: 'The identity provider refused the credentials or scope (invalid_client).',
    });
    expect(rejected.headers['cache-control']).toBe('no-store');
    // The admin audit line says why, as a token request's does.
    expect(
      svc.logs
        .audit()
        .filter((l) => l.msg === 'admin action' && l.action === 'refresh')
        .map((l) => [l.target, l.outcome, l.reason])
        .slice(-2),
    ).toEqual([
      ['production/shared.client', 'done', undefined],
      ['wrong.client', 'upstream_rejected', 'invalid_client'],
    ]);
  });

  it('POST /admin/reload answers the reload summary with no-store', async () => {
    idp.resetStats();
    const res = await adminCall('POST', '/admin/reload', KEY_ADMIN);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toEqual({
      clients: 4,
      callers: 2,
      added: [],
      removed: [],
      changed: [],
      replicas: [],
    });
    await sleep(300); // a reload re-warms only what is not held: no IdP request follows
    expect(idp.stats().tokenRequests).toBe(0);
  });

  it('no admin answer ever carried a configured secret or an access token handed out', async () => {
    await clients();
    expect(tokensSeen.size).toBeGreaterThanOrEqual(4);
    expect(adminTexts.length).toBeGreaterThan(10);
    const all = adminTexts.join('\n');
    for (const secret of [
      SECRET_DEALS,
      SECRET_SHARED,
      SECRET_WRONG_CONFIGURED,
      SECRET_WRONG_AT_IDP,
    ]) {
      expect(all).not.toContain(secret);
    }
    for (const accessToken of tokensSeen) expect(all).not.toContain(accessToken);
    const logs = svc.logs.lines.join('\n');
    for (const secret of [
      SECRET_DEALS,
      SECRET_SHARED,
      SECRET_WRONG_CONFIGURED,
      KEY_ADMIN,
      KEY_SERVICE,
    ]) {
      expect(logs).not.toContain(secret);
    }
    for (const accessToken of tokensSeen) expect(logs).not.toContain(accessToken);
  });
});
