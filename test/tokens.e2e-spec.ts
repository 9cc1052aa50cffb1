import request from 'supertest';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { FAILED_AUTH_LIMIT } from '@app/auth';
import { MIN_REFETCH_INTERVAL_MS } from '@app/tokens';
import { httpRequest, type InProcessService, sha256Hex, startService } from './support';

/**
 * GET /tokens/:clientId end to end: the service built as main.ts builds it, over HTTP, against
 * the sandbox IdP over HTTP, on a real Redis (TEST_REDIS_URL).
 */
const SECRET_POST = 'sandbox-secret-post-0001';
// ':' '%' '+' space and non-ASCII must survive client_secret_basic's form-encoding (RFC 6749 §2.3.1).
const SECRET_BASIC = 'b:a%s+i c-é密-0002';
const KEY_DEALS = 'caller-key-deals-0001-aaaaaaaaaaaaaaaa';
const KEY_DEALS_NEXT = 'caller-key-deals-0002-bbbbbbbbbbbbbbbb';
const KEY_OTHER = 'caller-key-other-0003-cccccccccccccccc';
const KEY_UAT_ONLY = 'caller-key-uatonly-0004-dddddddddddddd';

describe('GET /tokens/:clientId (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        {
          clientId: 'deals.client',
          secret: SECRET_POST,
          scopes: ['deals-read', 'permissions-read'],
        },
        { clientId: 'basic:client', secret: SECRET_BASIC, scopes: ['deals-read'] },
        { clientId: 'shared.client', secret: SECRET_POST, scopes: ['deals-read'] },
        { clientId: 'wrong.client', secret: 'the-secret-the-idp-knows', scopes: ['deals-read'] },
        { clientId: 'young.client', secret: SECRET_POST },
      ],
      expiresIn: 1200,
    });
    // Proactive refresh is off here so the IdP's counters reflect requests alone; the fleet
    // suites exercise refresh.
    svc = await startService({
      scheduler: false,
      redis: true,
      environments: {
        uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 },
        production: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 },
      },
      clients: [
        { clientId: 'deals.client', environment: 'uat', secret: SECRET_POST, scope: 'deals-read' },
        {
          clientId: 'basic:client',
          environment: 'uat',
          secret: SECRET_BASIC,
          authMethod: 'client_secret_basic',
          via: 'env',
        },
        { clientId: 'shared.client', environment: 'uat', secret: SECRET_POST },
        { clientId: 'shared.client', environment: 'production', secret: SECRET_POST },
        { clientId: 'wrong.client', environment: 'uat', secret: 'a-secret-the-idp-does-not-know' },
        // Fetched first by the 503 case, so its token's age is that case's own.
        { clientId: 'young.client', environment: 'uat', secret: SECRET_POST },
      ],
      callers: [
        { name: 'deals-service', keys: [KEY_DEALS, KEY_DEALS_NEXT], clients: ['*'] },
        { name: 'other-service', keys: [KEY_OTHER], clients: ['shared.client'] },
        { name: 'uat-only', keys: [KEY_UAT_ONLY], clients: ['uat/shared.client'] },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  beforeEach(() => {
    idp.clearFault();
  });

  const get = (path: string, key: string | undefined = KEY_DEALS) => {
    const r = request(svc.url).get(path);
    return key === undefined ? r : r.set('Authorization', `Bearer ${key}`);
  };

  it('answers 200 with the documented body and no-store headers, then serves the cached token', async () => {
    idp.resetStats();
    const before = Date.now();
    const first = await get('/tokens/deals.client').expect(200);

    expect(first.headers['cache-control']).toBe('no-store');
    expect(first.headers.pragma).toBe('no-cache');
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(first.body).sort()).toEqual(
      [
        'access_token',
        'client_id',
        'environment',
        'expires_at',
        'expires_in',
        'scope',
        'token_type',
      ].sort(),
    );
    expect(first.body).toMatchObject({
      token_type: 'Bearer',
      scope: 'deals-read',
      client_id: 'deals.client',
      environment: 'uat',
    });
    expect(first.body.access_token.split('.')).toHaveLength(3);
    expect(first.body.expires_in).toBeGreaterThanOrEqual(1195);
    expect(first.body.expires_in).toBeLessThanOrEqual(1200);
    // Expiry counted from when the request was sent, so never later than send time + 1200 s.
    const expiresAt = Date.parse(first.body.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 1195_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 1200_000);
    expect(idp.stats().tokenRequests).toBe(1);
    expect(idp.requests().at(-1)).toMatchObject({
      clientId: 'deals.client',
      authMethod: 'client_secret_post',
      scope: 'deals-read',
    });

    const second = await get('/tokens/deals.client').expect(200);
    expect(second.body.access_token).toBe(first.body.access_token);
    expect(idp.stats().tokenRequests).toBe(1);
  });

  it('fetches a client_secret_basic client whose id and secret need form-encoding', async () => {
    idp.resetStats();
    const res = await get('/tokens/basic:client').expect(200);
    expect(res.body).toMatchObject({
      client_id: 'basic:client',
      environment: 'uat',
      token_type: 'Bearer',
    });
    // The sandbox decodes Basic credentials per RFC 6749 §2.3.1: a wrong encoding would be refused.
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 1, rejected: 0 });
    expect(idp.requests().at(-1)).toMatchObject({
      clientId: 'basic:client',
      authMethod: 'client_secret_basic',
    });
  });

  it('selects the environment with ?environment= and refuses ambiguity without it', async () => {
    const uat = await get('/tokens/shared.client?environment=uat').expect(200);
    const prod = await get('/tokens/shared.client?environment=production').expect(200);
    expect(uat.body.environment).toBe('uat');
    expect(prod.body.environment).toBe('production');
    expect(uat.body.access_token).not.toBe(prod.body.access_token);

    const ambiguous = await get('/tokens/shared.client').expect(400);
    expect(ambiguous.body).toEqual({
      error: 'invalid_request',
      message:
        'The client exists in several environments (uat, production); choose one with ?environment=.',
    });
    // A caller allowed only one environment is not ambiguous.
    const narrowed = await get('/tokens/shared.client', KEY_UAT_ONLY).expect(200);
    expect(narrowed.body.environment).toBe('uat');
  });

  it('accepts both keys of a caller while both are listed (rotation)', async () => {
    const a = await get('/tokens/deals.client', KEY_DEALS).expect(200);
    const b = await get('/tokens/deals.client', KEY_DEALS_NEXT).expect(200);
    expect(b.body.access_token).toBe(a.body.access_token);
  });

  it.each([
    ['malformed client id', '/tokens/bad%20id', 'The client id is malformed.'],
    ['client id too long', `/tokens/${'a'.repeat(201)}`, 'The client id is malformed.'],
    [
      'minTtl not a number',
      '/tokens/deals.client?minTtl=abc',
      'minTtl must be a whole number of seconds from 0 to 86400.',
    ],
    [
      'minTtl negative',
      '/tokens/deals.client?minTtl=-1',
      'minTtl must be a whole number of seconds from 0 to 86400.',
    ],
    [
      'minTtl fractional',
      '/tokens/deals.client?minTtl=1.5',
      'minTtl must be a whole number of seconds from 0 to 86400.',
    ],
    [
      'minTtl too large',
      '/tokens/deals.client?minTtl=86401',
      'minTtl must be a whole number of seconds from 0 to 86400.',
    ],
    ['minTtl twice', '/tokens/deals.client?minTtl=1&minTtl=2', 'minTtl may be given once.'],
    ['unknown environment', '/tokens/deals.client?environment=staging', 'Unknown environment.'],
    ['malformed environment', '/tokens/deals.client?environment=../x', 'Unknown environment.'],
  ])('answers 400 invalid_request for %s', async (_case, path, message) => {
    const res = await get(path).expect(400);
    expect(res.body).toEqual({ error: 'invalid_request', message });
  });

  it('answers 400 when minTtl is longer than the client tokens live', async () => {
    await get('/tokens/deals.client').expect(200);
    const res = await get('/tokens/deals.client?minTtl=5000').expect(400);
    expect(res.body.error).toBe('invalid_request');
    expect(res.body.message).toMatch(
      /^minTtl \(5000 s\) is longer than this client's tokens live \(\d+ s\)\.$/,
    );
  });

  it.each([
    ['no Authorization header', undefined],
    ['an unknown key', 'not-a-known-caller-key'],
  ])('answers 401 with WWW-Authenticate for %s', async (_case, key) => {
    const res = await httpRequest(`${svc.url}/tokens/deals.client`, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      localAddress: '127.0.0.5',
    });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="token-vendor"');
    expect(res.json()).toEqual({
      error: 'unauthorized',
      message: 'A valid caller key is required (Authorization: Bearer <key>).',
    });
  });

  it('answers 404 identically for an unknown client and a client the caller may not use', async () => {
    const unknown = await get('/tokens/no-such.client', KEY_OTHER).expect(404);
    const notAllowed = await get('/tokens/deals.client', KEY_OTHER).expect(404);
    expect(unknown.body).toEqual({
      error: 'unknown_client',
      message: 'No such client is available to this caller.',
    });
    expect(notAllowed.body).toEqual(unknown.body);
    expect(notAllowed.headers['content-length']).toBe(unknown.headers['content-length']);
    // The audit log records which it was.
    const reasons = svc.logs
      .audit()
      .filter((e) => e.outcome === 'unknown_client')
      .map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['not_configured', 'not_allowed']));
  });

  it('answers 429 with Retry-After to failed authentications past the limit from one source, never to a valid key, and not to others', async () => {
    const source = '127.0.0.9';
    for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
      const res = await httpRequest(`${svc.url}/tokens/deals.client`, {
        headers: { authorization: 'Bearer wrong' },
        localAddress: source,
      });
      expect(res.status).toBe(401);
    }
    // Behind a sidecar or NAT every caller shares the address: a valid key still gets in.
    const valid = await httpRequest(`${svc.url}/tokens/deals.client`, {
      headers: { authorization: `Bearer ${KEY_DEALS}` },
      localAddress: source,
    });
    expect(valid.status).toBe(200);
    const limited = await httpRequest(`${svc.url}/tokens/deals.client`, {
      headers: { authorization: 'Bearer wrong' },
      localAddress: source,
    });
    expect(limited.status).toBe(429);
    expect(limited.json()).toEqual({
      error: 'too_many_requests',
      message: 'Too many failed authentications from this source; retry later.',
    });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);

    const other = await httpRequest(`${svc.url}/tokens/deals.client`, {
      headers: { authorization: `Bearer ${KEY_DEALS}` },
      localAddress: '127.0.0.10',
    });
    expect(other.status).toBe(200);
  });

  it('answers 502 upstream_rejected when the IdP refuses our secret, and caches nothing', async () => {
    idp.resetStats();
    const res = await get('/tokens/wrong.client').expect(502);
    expect(res.body).toEqual({
      error: 'upstream_rejected',
      message: 'The identity provider refused the credentials or scope (invalid_client).',
    });
    expect(idp.stats().tokenRequests).toBe(1); // rejections are not retried
  });

  it('answers 503 upstream_unavailable with Retry-After when the IdP fails and no token is held', async () => {
    // A token fetched here, so it is surely younger than MIN_REFETCH_INTERVAL_MS (5 s) when asked
    // for more than it has left: too young to be replaced (README "A token shorter than the minTtl
    // asked for is replaced only if it is more than 5 s old"), so 400 and no IdP request, even
    // with the IdP failing. minTtl=1200: a token from this 1200 s IdP never has that much left
    // once any time passed (its life is at most 1200 s from its send time; 1199 is met by a
    // 1200 s token under 1 s old).
    const fetchedAt = Date.now();
    await get('/tokens/young.client').expect(200);
    idp.resetStats();
    idp.setFault({ mode: 'status_500' });
    const res = await get('/tokens/young.client?minTtl=1200');
    expect(Date.now() - fetchedAt).toBeLessThan(MIN_REFETCH_INTERVAL_MS); // the precondition
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request'); // held token too young to be replaced for minTtl
    expect(res.body.message).toMatch(
      /^minTtl \(1200 s\) is longer than this client's tokens live \(\d+ s\)\.$/,
    );
    expect(idp.stats().tokenRequests).toBe(0);

    const cold = await get('/tokens/shared.client', KEY_UAT_ONLY);
    expect(cold.status).toBe(200); // served from the token fetched earlier, despite the IdP failing

    idp.resetStats();
    const fresh = await startService({
      scheduler: false,
      redis: true,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 } },
      clients: [{ clientId: 'deals.client', environment: 'uat', secret: SECRET_POST }],
      callers: [{ name: 'c', keys: [KEY_DEALS], clients: ['*'] }],
    });
    try {
      const down = await request(fresh.url)
        .get('/tokens/deals.client')
        .set('Authorization', `Bearer ${KEY_DEALS}`)
        .expect(503);
      expect(down.body).toEqual({
        error: 'upstream_unavailable',
        message:
          'The identity provider is unavailable: ' +
          down.body.message.split(': ').slice(1).join(': '),
      });
      expect(down.body.message).toMatch(/^The identity provider is unavailable: /);
      expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
      expect(idp.stats().tokenRequests).toBe(3); // retried: 3 attempts in all
    } finally {
      await fresh.close();
    }
  });

  it('never writes a secret, caller key or access token into the logs', async () => {
    const tokens = (
      await Promise.all([get('/tokens/deals.client'), get('/tokens/shared.client?environment=uat')])
    ).map((r) => r.body.access_token as string);
    const all = svc.logs.lines.join('\n');
    for (const needle of [
      SECRET_POST,
      SECRET_BASIC,
      KEY_DEALS,
      KEY_DEALS_NEXT,
      KEY_OTHER,
      KEY_UAT_ONLY,
      'a-secret-the-idp-does-not-know',
      ...tokens,
    ]) {
      expect(all).not.toContain(needle);
    }
    expect(svc.logs.audit().length).toBeGreaterThan(10);
  });

  describe('POST /tokens/:clientId/rejections', () => {
    const report = (path: string, body: unknown, key: string | null = KEY_DEALS) => {
      const r = request(svc.url)
        .post(path)
        .send(body as object);
      return key === null ? r : r.set('Authorization', `Bearer ${key}`);
    };

    it('has the same caller authentication and ACL as GET /tokens: 401 without a key, 404 for a client not allowed, 400 for an ambiguous environment', async () => {
      const current = (await get('/tokens/deals.client')).body.access_token as string;
      const body = { token_sha256: sha256Hex(current) };
      idp.resetStats();

      const anonymous = await report('/tokens/deals.client/rejections', body, null);
      expect([anonymous.status, anonymous.body]).toEqual([
        401,
        { error: 'unauthorized', message: expect.any(String) as string },
      ]);
      const notAllowed = await report('/tokens/deals.client/rejections', body, KEY_OTHER);
      const unknown = await report('/tokens/no-such.client/rejections', body, KEY_OTHER);
      expect(notAllowed.status).toBe(404);
      expect(notAllowed.text).toBe(unknown.text); // identical: reveals nothing
      const ambiguous = await report('/tokens/shared.client/rejections', body);
      expect(ambiguous.status).toBe(400);
      expect(ambiguous.body.error).toBe('invalid_request');
      expect(idp.stats().tokenRequests).toBe(0);
    });

    it('replaces the current token once, answers the GET /tokens body, and audits each report', async () => {
      const current = (await get('/tokens/shared.client?environment=production')).body
        .access_token as string;
      idp.resetStats();
      const res = await report('/tokens/shared.client/rejections?environment=production', {
        token_sha256: sha256Hex(current),
      });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toMatchObject({
        token_type: 'Bearer',
        client_id: 'shared.client',
        environment: 'production',
      });
      expect(res.body.access_token).not.toBe(current);
      expect(idp.stats().tokenRequests).toBe(1);
      const served = await get('/tokens/shared.client?environment=production');
      expect(served.body.access_token).toBe(res.body.access_token);

      // The same token again: within the interval, no second refresh.
      const again = await report('/tokens/shared.client/rejections?environment=production', {
        token_sha256: sha256Hex(res.body.access_token as string),
      });
      expect([again.status, again.body.access_token]).toEqual([200, res.body.access_token]);
      expect(idp.stats().tokenRequests).toBe(1);

      const lines = svc.logs
        .audit()
        .filter((l) => l.msg === 'token rejection report' && l.environment === 'production');
      expect(lines.map((l) => [l.caller, l.clientId, l.outcome])).toEqual([
        ['deals-service', 'shared.client', 'refreshed'],
        ['deals-service', 'shared.client', 'rate_limited'],
      ]);
      expect(lines[0].tokenFingerprint).toBe(
        sha256Hex(res.body.access_token as string).slice(0, 8),
      );
    });

    it('is described in the OpenAPI document', async () => {
      const doc = (await request(svc.url).get('/docs-json')).body as {
        paths: Record<string, Record<string, { requestBody?: unknown; responses: object }>>;
      };
      const op = doc.paths['/tokens/{clientId}/rejections'].post;
      expect(op.requestBody).toBeDefined();
      expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '401', '404', '502', '503']);
    });
  });
});
