import { createHmac, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  freePort,
  httpRequest,
  type InProcessService,
  sha256Hex,
  type SimpleResponse,
  startService,
} from '../support';

/**
 * Callers without keys (README "Callers without keys"): workload JWTs from a local issuer on
 * loopback (the sandbox's workload issuer, minting tokens shaped like projected ServiceAccount
 * tokens) verified offline with jose, beside static key callers on the same service.
 */
const CLIENT_A = 'workload-a.client';
const CLIENT_B = 'workload-b.client';
const SECRETS = { [CLIENT_A]: 'workload-secret-a-0001', [CLIENT_B]: 'workload-secret-b-0002' };
const KEY = 'tvk_workload-key-caller-0001-aaaaaaaaaaaaaaaaa';
const CI_SUBJECT = 'repo:org/batch:ref:refs/heads/main';
/** JWKS_REFETCH_COOLDOWN_MS in libs/auth/src/issuer-key-set.ts (not behind the library's door). */
const REFETCH_COOLDOWN_MS = 5_000;
const INVALID_TOKEN = 'Bearer realm="token-vendor", error="invalid_token"';

describe('workload JWT callers beside key callers (e2e)', () => {
  let idp: RunningSandbox;
  let ci: RunningSandbox;
  let offlineIssuer: string;
  let dir: string;
  let app: InProcessService;
  /** Each refused request comes from its own loopback address: the failed-auth limit is per source. */
  let nextSource = 10;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: Object.entries(SECRETS).map(([clientId, secret]) => ({ clientId, secret })),
    });
    ci = await startIdentitySandbox({ clients: [] });
    offlineIssuer = `http://127.0.0.1:${await freePort()}/offline`;
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-workloads-'));
    for (const [clientId, secret] of Object.entries(SECRETS)) {
      writeFileSync(join(dir, clientId), `${secret}\n`);
    }
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
        callerIssuers: [
          // The cluster: keys found through discovery from the issuer.
          { name: 'cluster', issuer: idp.workloadIssuer.issuer, audience: 'token-vendor' },
          // Another OIDC workload issuer, with its JWKS named.
          {
            name: 'ci',
            issuer: ci.workloadIssuer.issuer,
            jwksUri: ci.workloadIssuer.jwksUri,
            audience: 'token-vendor',
          },
          // An issuer whose keys were never reachable.
          {
            name: 'offline',
            issuer: offlineIssuer,
            jwksUri: `${offlineIssuer}/jwks`,
            audience: 'token-vendor',
          },
        ],
        callers: [
          {
            name: 'deals-service',
            kubernetes: { issuer: 'cluster', namespace: 'deals', serviceAccount: 'deals-api' },
            clients: [CLIENT_A],
          },
          {
            name: 'batch-jobs',
            jwt: { issuer: 'ci', subject: CI_SUBJECT },
            clients: [`uat/${CLIENT_B}`],
          },
          { name: 'offline-jobs', jwt: { issuer: 'offline', subject: 'x' }, clients: [CLIENT_A] },
          { name: 'keyed', keySha256: [sha256Hex(KEY)], clients: [CLIENT_A, CLIENT_B] },
        ],
      }),
    );
    app = await startService({ configPath, scheduler: false });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await idp?.close();
    await ci?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tokenFor = (
    bearer: string,
    clientId: string,
    source = '127.0.0.1',
  ): Promise<SimpleResponse> =>
    httpRequest(`${app.url}/tokens/${clientId}`, {
      headers: { authorization: `Bearer ${bearer}` },
      localAddress: source,
    });
  const refusedSource = (): string => `127.0.0.${nextSource++}`;
  const deals = (extra: Parameters<RunningSandbox['workloadIssuer']['mint']>[0] = {}) =>
    idp.workloadIssuer.mint({ namespace: 'deals', serviceAccount: 'deals-api', ...extra });
  const audit = (): Record<string, unknown>[] => app.logs.audit();

  it('serves a projected ServiceAccount token the clients its caller may use, 404 for others', async () => {
    const token = await deals({ pod: { name: 'deals-api-7f9c4', uid: 'pod-uid-0001' } });

    const served = await tokenFor(token, CLIENT_A);
    expect(served.status).toBe(200);
    expect(served.json()).toMatchObject({
      client_id: CLIENT_A,
      environment: 'uat',
      token_type: 'Bearer',
    });
    const other = await tokenFor(token, CLIENT_B);
    expect(other.status).toBe(404);
    expect(other.json()).toEqual({
      error: 'unknown_client',
      message: 'No such client is available to this caller.',
    });

    const lines = audit().filter((l) => l.msg === 'token request' && l.caller === 'deals-service');
    expect(
      lines.map((l) => [l.clientId, l.outcome, l.reason, l.workload, l.pod, l.podUid]),
    ).toEqual([
      [CLIENT_A, 'served', undefined, 'deals/deals-api', 'deals-api-7f9c4', 'pod-uid-0001'],
      [
        CLIENT_B,
        'unknown_client',
        'not_allowed',
        'deals/deals-api',
        'deals-api-7f9c4',
        'pod-uid-0001',
      ],
    ]);
    expect(app.logs.lines.filter((l) => l.includes(token.split('.')[2]))).toEqual([]);
  });

  it("audits a JWT caller's rejection reports with the same caller fields as its token requests", async () => {
    const token = await deals({ pod: { name: 'deals-api-rejector', uid: 'pod-uid-0002' } });
    const report = (clientId: string): Promise<SimpleResponse> =>
      httpRequest(`${app.url}/tokens/${clientId}/rejections`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        // Names no token ever served: answered with the current one, the IdP not asked.
        body: JSON.stringify({ token_sha256: sha256Hex('a token nobody served') }),
      });

    expect((await tokenFor(token, CLIENT_A)).status).toBe(200);
    expect((await tokenFor(token, CLIENT_B)).status).toBe(404);
    const reported = await report(CLIENT_A);
    expect(reported.status).toBe(200);
    expect(reported.json()).toMatchObject({ client_id: CLIENT_A, environment: 'uat' });
    expect((await report(CLIENT_B)).status).toBe(404);

    const lines = audit().filter((l) => l.pod === 'deals-api-rejector');
    expect(
      lines.map((l) => [l.msg, l.clientId, l.outcome, l.caller, l.workload, l.pod, l.podUid]),
    ).toEqual([
      ...[
        ['token request', CLIENT_A, 'served'],
        ['token request', CLIENT_B, 'unknown_client'],
        ['token rejection report', CLIENT_A, 'not_current'],
        ['token rejection report', CLIENT_B, 'unknown_client'],
      ].map((line) => [
        ...line,
        'deals-service',
        'deals/deals-api',
        'deals-api-rejector',
        'pod-uid-0002',
      ]),
    ]);
  });

  it('verifies a token once and answers its repeats from the verified-token cache', async () => {
    const token = await deals();
    const fetchesBefore = idp.workloadIssuer.jwksRequests().length;
    for (let i = 0; i < 5; i++) expect((await tokenFor(token, CLIENT_A)).status).toBe(200);
    // Keys were fetched already: none of the six requests fetched them again.
    expect(idp.workloadIssuer.jwksRequests()).toHaveLength(fetchesBefore);
  });

  it('serves another OIDC workload by its subject, and key callers side by side', async () => {
    const token = await ci.workloadIssuer.mint({ subject: CI_SUBJECT });

    expect((await tokenFor(token, CLIENT_B)).status).toBe(200);
    expect((await tokenFor(token, CLIENT_A)).status).toBe(404);
    expect((await tokenFor(KEY, CLIENT_A)).status).toBe(200);
    expect((await tokenFor(KEY, CLIENT_B)).status).toBe(200);
    expect((await tokenFor(await deals(), CLIENT_A)).status).toBe(200);

    const batch = audit().filter((l) => l.caller === 'batch-jobs');
    expect(batch.map((l) => [l.outcome, l.reason, l.workload])).toEqual([
      ['served', undefined, CI_SUBJECT],
      ['unknown_client', 'not_allowed', CI_SUBJECT],
    ]);
    expect(
      audit()
        .filter((l) => l.caller === 'keyed')
        .every((l) => l.workload === undefined),
    ).toBe(true);
  });

  /** The refusals, each with the check the audit line must name. */
  const refusals: [string, () => Promise<string>, string][] = [
    ['expired', () => deals({ expiresIn: -120 }), 'expired'],
    ['not yet valid', () => deals({ notBeforeIn: 600 }), 'not_yet_valid'],
    ['for another audience', () => deals({ audience: ['kubernetes'] }), 'audience'],
    ['from an issuer nobody configured', () => deals({ issuer: 'https://evil.example' }), 'issuer'],
    [
      'unsigned (alg none)',
      async () => withHeader(await deals(), { alg: 'none', typ: 'JWT' }, ''),
      'algorithm',
    ],
    ['HS256 signed with the public key', () => hmacWithPublicKey(), 'algorithm'],
    ['signed by a key the issuer does not publish', () => signedByStranger(), 'unknown_key'],
    ['with a tampered payload', () => tampered(), 'signature'],
    [
      'for a workload no caller names',
      () => idp.workloadIssuer.mint({ namespace: 'deals', serviceAccount: 'other' }),
      'no_caller',
    ],
    [
      'not a JWT at all (a key that looks like one)',
      () => Promise.resolve('eyJub3QiOiJqc29uIn0.eyJ4IjoxfQ.c2ln'),
      'issuer',
    ],
  ];

  it.each(refusals)(
    'refuses a token %s: 401 invalid_token, the failed check audited',
    async (_name, make, reason) => {
      const token = await make();
      const source = refusedSource();

      const res = await tokenFor(token, CLIENT_A, source);

      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe(INVALID_TOKEN);
      expect(res.json()).toEqual({
        error: 'unauthorized',
        message: 'The caller token is not valid (Authorization: Bearer <token>).',
      });
      const line = audit().find((l) => l.msg === 'request refused' && l.source === source);
      expect(line).toMatchObject({ caller: null, outcome: 'unauthorized', reason });
      if (reason === 'no_caller') expect(line?.workload).toBe('deals/other');
      expect(app.logs.lines.filter((l) => l.includes(token))).toEqual([]);
    },
  );

  it('follows the issuer rotating its signing key, without a restart, and stops accepting the withdrawn key', async () => {
    const oldToken = await deals();
    expect((await tokenFor(oldToken, CLIENT_A)).status).toBe(200);
    await idp.workloadIssuer.rotateKey(false); // the old key is withdrawn at once
    const newToken = await deals();
    expect(newToken.split('.')[0]).not.toBe(oldToken.split('.')[0]); // another kid
    // Unknown key ids refetch the JWKS at most once per cooldown: wait out the last fetch's.
    const lastFetch = Math.max(...idp.workloadIssuer.jwksRequests());
    await new Promise((r) =>
      setTimeout(r, Math.max(0, lastFetch + REFETCH_COOLDOWN_MS + 200 - Date.now())),
    );
    const fetchesBefore = idp.workloadIssuer.jwksRequests().length;

    expect((await tokenFor(newToken, CLIENT_A)).status).toBe(200);
    expect((await tokenFor(await deals(), CLIENT_A)).status).toBe(200);
    expect(idp.workloadIssuer.jwksRequests()).toHaveLength(fetchesBefore + 1);
    // The old token was verified and cached before, but its key is withdrawn: refused now, with
    // no further JWKS request (the refetch cooldown holds).
    const stale = await tokenFor(oldToken, CLIENT_A, refusedSource());
    expect([stale.status, stale.headers['www-authenticate']]).toEqual([401, INVALID_TOKEN]);
    expect(idp.workloadIssuer.jwksRequests()).toHaveLength(fetchesBefore + 1);
  }, 20_000);

  it('keeps the cached keys while the JWKS endpoint is down', async () => {
    idp.workloadIssuer.setAvailable(false);
    try {
      const lastFetch = Math.max(...idp.workloadIssuer.jwksRequests());
      await new Promise((r) =>
        setTimeout(r, Math.max(0, lastFetch + REFETCH_COOLDOWN_MS + 200 - Date.now())),
      );
      const fetchesBefore = idp.workloadIssuer.jwksRequests().length;
      // An unknown kid makes the service try the JWKS: it is down...
      const refused = await tokenFor(await signedByStranger(), CLIENT_A, refusedSource());
      expect(refused.status).toBe(401);
      expect(idp.workloadIssuer.jwksRequests()).toHaveLength(fetchesBefore + 1);
      // ...and tokens signed with the cached key are still verified and served.
      expect((await tokenFor(await deals(), CLIENT_A)).status).toBe(200);
      expect((await tokenFor(KEY, CLIENT_A)).status).toBe(200);
      expect(
        app.logs.lines.some((l) =>
          l.includes('caller issuer keys cannot be fetched; the cached keys stay in use'),
        ),
      ).toBe(true);
    } finally {
      idp.workloadIssuer.setAvailable(true);
    }
  }, 20_000);

  it('answers 503 to JWT callers of an issuer whose keys were never fetched, and keeps serving key callers', async () => {
    const token = await idp.workloadIssuer.mint({ subject: 'x', issuer: offlineIssuer });
    const source = refusedSource();

    const res = await tokenFor(token, CLIENT_A, source);

    expect(res.status).toBe(503);
    expect(res.json()).toEqual({
      error: 'upstream_unavailable',
      message: "The caller token's issuer keys cannot be fetched; retry later.",
    });
    expect(res.headers['retry-after']).toBe('5');
    // Audited with why and which issuer (never the token), though no caller was admitted.
    expect(audit().filter((l) => l.source === source)).toEqual([
      expect.objectContaining({
        msg: 'request refused',
        caller: null,
        path: `/tokens/${CLIENT_A}`,
        outcome: 'upstream_unavailable',
        reason: 'caller_issuer_keys',
        issuer: 'offline',
      }),
    ]);
    expect(app.logs.lines.filter((l) => l.includes(token))).toEqual([]);
    expect((await tokenFor(KEY, CLIENT_A)).status).toBe(200);
    expect((await tokenFor(await deals(), CLIENT_A)).status).toBe(200);
  });

  // ------------------------------------------------------------------------------------------
  // Forged tokens, made the ways an attacker would.

  /** A valid token's payload and signature under another header. */
  function withHeader(token: string, header: object, signature: string): string {
    const [, payload] = token.split('.');
    return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}.${signature}`;
  }

  /** HS256 with the issuer's public key (PEM) as the HMAC secret: the classic confusion attack. */
  async function hmacWithPublicKey(): Promise<string> {
    const jwks = (await (await fetch(idp.workloadIssuer.jwksUri)).json()) as { keys: object[] };
    const pem = createPublicKey({ key: jwks.keys[0] as never, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const [, payload] = (await deals()).split('.');
    const header = Buffer.from(
      JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: await idp.workloadIssuer.kid() }),
    ).toString('base64url');
    const mac = createHmac('sha256', pem).update(`${header}.${payload}`).digest('base64url');
    return `${header}.${payload}.${mac}`;
  }

  /** A well-formed RS256 token for the right issuer and audience, from a key it never published. */
  async function signedByStranger(): Promise<string> {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const [, payload] = (await deals()).split('.');
    const header = Buffer.from(
      JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'stranger' }),
    ).toString('base64url');
    const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), privateKey);
    return `${header}.${payload}.${signature.toString('base64url')}`;
  }

  /** A valid token for another ServiceAccount with its payload rewritten to name deals-api. */
  async function tampered(): Promise<string> {
    const [header, , signature] = (
      await idp.workloadIssuer.mint({ namespace: 'deals', serviceAccount: 'deals-readonly' })
    ).split('.');
    const claims = JSON.parse(Buffer.from((await deals()).split('.')[1], 'base64url').toString());
    return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
  }
});
