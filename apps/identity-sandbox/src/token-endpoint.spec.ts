import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { basicAuthorization, startIdentitySandbox, type RunningSandbox } from './index';
import type { SandboxLogEntry } from './types';
import {
  decodeJwt,
  DEMO_ID,
  DEMO_SECRET,
  demoParams,
  FORM_CONTENT_TYPE,
  postToken,
  rawRequest,
  jsonOf,
} from './spec-support';

const ODD_ID = 'odd:id%ü+ 1';
const ODD_SECRET = 'sécret:with%25 and+plus:✓';

describe('POST /connect/token', () => {
  let sandbox: RunningSandbox;
  const logs: SandboxLogEntry[] = [];

  beforeAll(async () => {
    sandbox = await startIdentitySandbox({
      port: 0,
      host: '127.0.0.1',
      clients: [
        { clientId: DEMO_ID, secret: DEMO_SECRET, scopes: ['deals-read', 'permissions-read'] },
        { clientId: ODD_ID, secret: ODD_SECRET, scopes: ['a'] },
        { clientId: 'no-scope.client', secret: 'x' },
      ],
      log: (entry) => logs.push(entry),
    });
  });
  afterAll(() => sandbox.close());
  beforeEach(() => {
    sandbox.resetStats();
    logs.length = 0;
  });

  describe('success', () => {
    it('issues a CAS-shaped token to client_secret_post with the exact headers and body', async () => {
      const before = Math.floor(Date.now() / 1000);
      const res = await postToken(sandbox, demoParams(), { 'accept-encoding': 'identity' });
      const text = await res.text();

      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('pragma')).toBe('no-cache');
      expect(res.headers.get('content-encoding')).toBeNull();
      expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
      const body = JSON.parse(text);
      expect(Object.keys(body)).toEqual(['access_token', 'expires_in', 'token_type', 'scope']);
      expect(body).toEqual({
        access_token: expect.any(String),
        expires_in: 1200,
        token_type: 'Bearer',
        scope: 'deals-read permissions-read',
      });

      const jwt = decodeJwt(body.access_token);
      const after = Math.floor(Date.now() / 1000);
      expect(jwt.header).toEqual({ alg: 'RS256', typ: 'JWT', kid: expect.any(String) });
      const { iat } = jwt.payload as { iat: number };
      expect(iat).toBeGreaterThanOrEqual(before);
      expect(iat).toBeLessThanOrEqual(after);
      expect(jwt.payload).toEqual({
        iss: sandbox.url,
        aud: 'cas-api',
        client_id: DEMO_ID,
        scope: ['deals-read', 'permissions-read'],
        nbf: iat,
        iat,
        exp: iat + 1200,
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
    });

    it('signs tokens with the key published in the JWKS', async () => {
      const body = await jsonOf(await postToken(sandbox, demoParams()));
      const jwks = await jsonOf(
        await fetch(`${sandbox.url}/.well-known/openid-configuration/jwks`),
      );
      const jwt = decodeJwt(body.access_token);
      const jwk = jwks.keys.find((key) => key.kid === jwt.header.kid);

      expect(jwks.keys).toHaveLength(1);
      expect(jwk).toEqual({
        kty: 'RSA',
        n: expect.any(String),
        e: 'AQAB',
        kid: jwt.header.kid,
        alg: 'RS256',
        use: 'sig',
      });
      const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      expect(verify('RSA-SHA256', Buffer.from(jwt.signingInput), key, jwt.signature)).toBe(true);
    });

    it('gzips the body when the request accepts gzip', async () => {
      const form = new URLSearchParams(demoParams()).toString();
      const res = await rawRequest(
        sandbox.tokenUrl,
        'POST',
        { 'content-type': FORM_CONTENT_TYPE, 'accept-encoding': 'gzip' },
        form,
      );

      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.headers.vary).toBe('Accept-Encoding');
      expect(res.headers['content-length']).toBe(String(res.body.length));
      expect(JSON.parse(gunzipSync(res.body).toString('utf8'))).toEqual({
        access_token: expect.any(String),
        expires_in: 1200,
        token_type: 'Bearer',
        scope: 'deals-read permissions-read',
      });
    });

    it('does not gzip when gzip is refused with q=0', async () => {
      const form = new URLSearchParams(demoParams()).toString();
      const res = await rawRequest(
        sandbox.tokenUrl,
        'POST',
        { 'content-type': FORM_CONTENT_TYPE, 'accept-encoding': 'gzip;q=0, identity' },
        form,
      );
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(JSON.parse(res.body.toString('utf8')).token_type).toBe('Bearer');
    });

    it('accepts client_secret_basic with an id and secret holding ":", "%", "+", spaces and non-ASCII', async () => {
      const res = await postToken(
        sandbox,
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization(ODD_ID, ODD_SECRET) },
      );
      const body = await jsonOf(res);

      expect(res.status).toBe(200);
      expect(body.scope).toBe('a');
      expect(decodeJwt(body.access_token).payload.client_id).toBe(ODD_ID);
      expect(sandbox.requests()).toEqual([
        expect.objectContaining({
          clientId: ODD_ID,
          authMethod: 'client_secret_basic',
          grantType: 'client_credentials',
          status: 200,
        }),
      ]);
    });

    it('accepts client_secret_post with the same odd id and secret', async () => {
      const res = await postToken(sandbox, {
        grant_type: 'client_credentials',
        client_id: ODD_ID,
        client_secret: ODD_SECRET,
      });
      expect(res.status).toBe(200);
    });

    it('tolerates a client_id in the body that matches the Basic one', async () => {
      const res = await postToken(
        sandbox,
        { grant_type: 'client_credentials', client_id: DEMO_ID },
        { authorization: basicAuthorization(DEMO_ID, DEMO_SECRET) },
      );
      expect(res.status).toBe(200);
    });

    it('grants the requested subset of scopes, deduplicated, in request order', async () => {
      const res = await postToken(
        sandbox,
        demoParams({ scope: 'permissions-read  deals-read permissions-read' }),
      );
      const body = await jsonOf(res);
      expect(res.status).toBe(200);
      expect(body.scope).toBe('permissions-read deals-read');
      expect(decodeJwt(body.access_token).payload.scope).toEqual([
        'permissions-read',
        'deals-read',
      ]);
    });

    it('omits scope for a client that has none', async () => {
      const res = await postToken(sandbox, {
        grant_type: 'client_credentials',
        client_id: 'no-scope.client',
        client_secret: 'x',
      });
      const body = await jsonOf(res);
      expect(res.status).toBe(200);
      expect(Object.keys(body)).toEqual(['access_token', 'expires_in', 'token_type']);
      expect(decodeJwt(body.access_token).payload.scope).toEqual([]);
    });

    it('makes every token unique', async () => {
      const answers = await Promise.all(
        Array.from({ length: 10 }, async () => jsonOf(await postToken(sandbox, demoParams()))),
      );
      const tokens = new Set(answers.map((a) => a.access_token));
      const jtis = new Set(answers.map((a) => decodeJwt(a.access_token).payload.jti));
      expect(tokens.size).toBe(10);
      expect(jtis.size).toBe(10);
      expect(sandbox.stats()).toEqual({
        tokenRequests: 10,
        byClient: { [DEMO_ID]: 10 },
        issued: 10,
        rejected: 0,
        faulted: 0,
      });
    });

    it('uses the lifetime set by setExpiresIn for expires_in and exp', async () => {
      sandbox.setExpiresIn(5);
      try {
        const body = await jsonOf(await postToken(sandbox, demoParams()));
        const { iat, exp } = decodeJwt(body.access_token).payload as { iat: number; exp: number };
        expect(body.expires_in).toBe(5);
        expect(exp - iat).toBe(5);
      } finally {
        sandbox.setExpiresIn(1200);
      }
    });

    it('refuses a lifetime that is not a positive integer', () => {
      expect(() => sandbox.setExpiresIn(0)).toThrow(
        'expiresIn must be an integer from 1 to 315360000',
      );
      expect(() => sandbox.setExpiresIn(1.5)).toThrow('expiresIn must be an integer');
    });
  });

  describe('rejections', () => {
    const cases: Array<[string, Record<string, string>, Record<string, string>, object]> = [
      ['a wrong secret', demoParams({ client_secret: 'wrong' }), {}, { error: 'invalid_client' }],
      ['an unknown client', demoParams({ client_id: 'nobody' }), {}, { error: 'invalid_client' }],
      [
        'no client authentication',
        { grant_type: 'client_credentials' },
        {},
        { error: 'invalid_client' },
      ],
      [
        'a client_id without a secret',
        { grant_type: 'client_credentials', client_id: DEMO_ID },
        {},
        { error: 'invalid_client' },
      ],
      [
        'a wrong Basic secret',
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization(DEMO_ID, 'wrong') },
        { error: 'invalid_client' },
      ],
      [
        'Basic credentials that were not form-encoded before base64',
        { grant_type: 'client_credentials' },
        { authorization: `Basic ${Buffer.from(`${ODD_ID}:${ODD_SECRET}`).toString('base64')}` },
        { error: 'invalid_client' },
      ],
      [
        'a Basic header that is not base64',
        { grant_type: 'client_credentials' },
        { authorization: 'Basic !!!' },
        { error: 'invalid_client' },
      ],
      [
        'Basic and client_secret_post at once',
        demoParams(),
        { authorization: basicAuthorization(DEMO_ID, DEMO_SECRET) },
        {
          error: 'invalid_request',
          error_description: 'more than one client authentication method',
        },
      ],
      [
        'a Basic id that differs from the body client_id',
        { grant_type: 'client_credentials', client_id: 'other' },
        { authorization: basicAuthorization(DEMO_ID, DEMO_SECRET) },
        {
          error: 'invalid_request',
          error_description: 'more than one client authentication method',
        },
      ],
      [
        'another grant type',
        demoParams({ grant_type: 'password' }),
        {},
        { error: 'unsupported_grant_type' },
      ],
      [
        'no grant type',
        { client_id: DEMO_ID, client_secret: DEMO_SECRET },
        {},
        { error: 'unsupported_grant_type' },
      ],
      [
        'a scope the client lacks',
        demoParams({ scope: 'deals-read deals-write' }),
        {},
        { error: 'invalid_scope' },
      ],
    ];

    it.each(cases)('answers 400 to %s', async (_name, params, headers, expected) => {
      const res = await postToken(sandbox, params, headers);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await jsonOf(res)).toEqual(expected);
      expect(sandbox.stats()).toMatchObject({
        tokenRequests: 1,
        issued: 0,
        rejected: 1,
        faulted: 0,
      });
    });

    it('answers 400 invalid_request to a body that is not form-encoded', async () => {
      const res = await fetch(sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(demoParams()),
      });
      expect(res.status).toBe(400);
      expect(await jsonOf(res)).toEqual({
        error: 'invalid_request',
        error_description: 'Content-Type must be application/x-www-form-urlencoded',
      });
    });

    it('answers 400 invalid_request to a repeated parameter', async () => {
      const res = await fetch(sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': `${FORM_CONTENT_TYPE}; charset=utf-8` },
        body: `${new URLSearchParams(demoParams()).toString()}&scope=a&scope=b`,
      });
      expect(res.status).toBe(400);
      expect(await jsonOf(res)).toEqual({
        error: 'invalid_request',
        error_description: 'scope is repeated',
      });
    });

    it('answers 413 to a body over 64 KiB and still serves the next request', async () => {
      const res = await fetch(sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': FORM_CONTENT_TYPE },
        body: `${new URLSearchParams(demoParams()).toString()}&pad=${'x'.repeat(64 * 1024)}`,
      });
      expect(res.status).toBe(413);
      expect(await jsonOf(res)).toEqual({
        error: 'invalid_request',
        error_description: 'request body larger than 64 KiB',
      });
      expect((await postToken(sandbox, demoParams())).status).toBe(200);
      expect(sandbox.stats()).toMatchObject({ tokenRequests: 2, issued: 1, rejected: 1 });
    });

    it('accepts a body of exactly 64 KiB', async () => {
      const base = `${new URLSearchParams(demoParams()).toString()}&pad=`;
      const res = await fetch(sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': FORM_CONTENT_TYPE },
        body: base + 'x'.repeat(64 * 1024 - base.length),
      });
      expect(res.status).toBe(200);
    });

    it('answers 405 to GET', async () => {
      const res = await fetch(sandbox.tokenUrl);
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(await jsonOf(res)).toEqual({ error: 'method_not_allowed' });
      expect(sandbox.stats().tokenRequests).toBe(0);
    });
  });

  describe('bookkeeping', () => {
    it('records each request without its secret and counts per client', async () => {
      await postToken(sandbox, demoParams({ scope: 'deals-read' }));
      await postToken(sandbox, demoParams({ client_secret: 'wrong' }));
      await postToken(
        sandbox,
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization(ODD_ID, ODD_SECRET), accept: '*/*' },
      );

      expect(sandbox.stats()).toEqual({
        tokenRequests: 3,
        byClient: { [DEMO_ID]: 2, [ODD_ID]: 1 },
        issued: 2,
        rejected: 1,
        faulted: 0,
      });
      const records = sandbox.requests();
      expect(records).toEqual([
        {
          clientId: DEMO_ID,
          authMethod: 'client_secret_post',
          scope: 'deals-read',
          grantType: 'client_credentials',
          contentType: FORM_CONTENT_TYPE,
          accept: 'application/json',
          acceptEncoding: expect.any(String),
          at: expect.any(Number),
          status: 200,
        },
        expect.objectContaining({
          clientId: DEMO_ID,
          authMethod: 'client_secret_post',
          status: 400,
        }),
        expect.objectContaining({
          clientId: ODD_ID,
          authMethod: 'client_secret_basic',
          accept: '*/*',
        }),
      ]);
      const serialized = JSON.stringify(records);
      expect(serialized).not.toContain(DEMO_SECRET);
      expect(serialized).not.toContain('wrong');
    });

    it('logs one entry per request with no secret or token', async () => {
      const body = await jsonOf(await postToken(sandbox, demoParams()));
      await postToken(sandbox, demoParams({ client_secret: 'wrong-secret' }));

      expect(logs).toEqual([
        {
          msg: 'token request',
          clientId: DEMO_ID,
          authMethod: 'client_secret_post',
          status: 200,
          outcome: 'issued',
          fault: undefined,
          durationMs: expect.any(Number),
        },
        expect.objectContaining({ status: 400, outcome: 'invalid_client' }),
      ]);
      const serialized = JSON.stringify(logs);
      expect(serialized).not.toContain(DEMO_SECRET);
      expect(serialized).not.toContain('wrong-secret');
      expect(serialized).not.toContain(body.access_token);
    });

    it('rotates a secret: the old one stops working at once', async () => {
      sandbox.setClientSecret(ODD_ID, 'rotated');
      try {
        const old = await postToken(sandbox, {
          grant_type: 'client_credentials',
          client_id: ODD_ID,
          client_secret: ODD_SECRET,
        });
        const rotated = await postToken(sandbox, {
          grant_type: 'client_credentials',
          client_id: ODD_ID,
          client_secret: 'rotated',
        });
        expect(old.status).toBe(400);
        expect(rotated.status).toBe(200);
        expect((await jsonOf(rotated)).scope).toBe('a');
      } finally {
        sandbox.setClientSecret(ODD_ID, ODD_SECRET);
      }
    });

    it('adds an unknown client on setClientSecret, with no scopes', async () => {
      sandbox.setClientSecret('new.client', 'new-secret');
      const res = await postToken(sandbox, {
        grant_type: 'client_credentials',
        client_id: 'new.client',
        client_secret: 'new-secret',
      });
      expect(res.status).toBe(200);
    });
  });
});

describe('startIdentitySandbox options', () => {
  it('uses the demo clients, issuer and audience given', async () => {
    const sandbox = await startIdentitySandbox({
      issuer: 'https://idp.test',
      audience: 'other-api',
      expiresIn: 60,
    });
    try {
      const res = await postToken(
        sandbox,
        { grant_type: 'client_credentials' },
        { authorization: basicAuthorization('demo-basic.client', 'demo:basic%secret-not-real') },
      );
      const body = await jsonOf(res);
      expect(res.status).toBe(200);
      expect(body.expires_in).toBe(60);
      expect(decodeJwt(body.access_token).payload).toMatchObject({
        iss: 'https://idp.test',
        aud: 'other-api',
        client_id: 'demo-basic.client',
        scope: ['deals-read', 'permissions-read'],
      });
      expect(sandbox.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(sandbox.tokenUrl).toBe(`${sandbox.url}/connect/token`);
    } finally {
      await sandbox.close();
    }
  });

  it('refuses invalid options', async () => {
    await expect(startIdentitySandbox({ expiresIn: 0 })).rejects.toThrow(
      'expiresIn must be an integer from 1 to 315360000',
    );
    await expect(
      startIdentitySandbox({
        clients: [
          { clientId: 'a', secret: 'x' },
          { clientId: 'a', secret: 'y' },
        ],
      }),
    ).rejects.toThrow('clients[1].clientId is a duplicate');
    await expect(
      startIdentitySandbox({ clients: [{ clientId: 'a', secret: '' }] }),
    ).rejects.toThrow('clients[0].secret must be a non-empty string');
    await expect(startIdentitySandbox({ port: 70000 })).rejects.toThrow(
      'port must be an integer from 0 to 65535',
    );
  });

  it('close() is idempotent', async () => {
    const sandbox = await startIdentitySandbox();
    await Promise.all([sandbox.close(), sandbox.close()]);
    await sandbox.close();
    await expect(fetch(`${sandbox.url}/health`)).rejects.toThrow('fetch failed');
  });
});
