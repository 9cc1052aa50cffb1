import { startIdentitySandbox, type RunningSandbox } from './index';
import { DEMO_ID, DEMO_SECRET, demoParams, postToken, rawRequest, jsonOf } from './spec-support';

describe('discovery, health and the control API', () => {
  let sandbox: RunningSandbox;

  beforeAll(async () => {
    sandbox = await startIdentitySandbox({
      port: 0,
      host: '127.0.0.1',
      issuer: 'http://localhost:4000',
    });
  });
  afterAll(() => sandbox.close());
  beforeEach(async () => {
    await fetch(`${sandbox.url}/_sandbox/reset`, { method: 'POST' });
  });

  const json = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${sandbox.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  describe('GET /.well-known/openid-configuration', () => {
    it('describes the token endpoint, built from the Host used', async () => {
      const res = await fetch(`${sandbox.url}/.well-known/openid-configuration`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
      expect(await jsonOf(res)).toEqual({
        issuer: 'http://localhost:4000',
        token_endpoint: `${sandbox.url}/connect/token`,
        jwks_uri: `${sandbox.url}/.well-known/openid-configuration/jwks`,
        grant_types_supported: ['client_credentials'],
        token_endpoint_auth_methods_supported: [
          'client_secret_post',
          'client_secret_basic',
          'private_key_jwt',
          'tls_client_auth',
          'self_signed_tls_client_auth',
        ],
        token_endpoint_auth_signing_alg_values_supported: ['RS256', 'PS256', 'ES256'],
        scopes_supported: ['deals-read', 'permissions-read'],
      });
    });

    it('uses another Host as given (docker-compose service name)', async () => {
      const res = await rawRequest(`${sandbox.url}/.well-known/openid-configuration`, 'GET', {
        host: 'identity-sandbox:4000',
      });
      const doc = JSON.parse(res.body.toString('utf8'));
      expect(doc.token_endpoint).toBe('http://identity-sandbox:4000/connect/token');
      expect(doc.jwks_uri).toBe(
        'http://identity-sandbox:4000/.well-known/openid-configuration/jwks',
      );
    });
  });

  it('GET /.well-known/openid-configuration/jwks: one RS256 signing key', async () => {
    const res = await fetch(`${sandbox.url}/.well-known/openid-configuration/jwks`);
    const body = await jsonOf(res);
    expect(res.status).toBe(200);
    expect(body).toEqual({
      keys: [
        {
          kty: 'RSA',
          n: expect.any(String),
          e: 'AQAB',
          kid: expect.any(String),
          alg: 'RS256',
          use: 'sig',
        },
      ],
    });
    expect(Buffer.from(body.keys[0].n, 'base64url')).toHaveLength(256);
  });

  it('GET /health: {"status":"ok"}', async () => {
    const res = await fetch(`${sandbox.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"status":"ok"}');
  });

  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['GET', '/_sandbox/nope'],
    ['DELETE', '/_sandbox/stats'],
    ['GET', '/connect/token/extra'],
  ])('%s %s: 404 JSON', async (method, path) => {
    const res = await fetch(`${sandbox.url}${path}`, { method });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    expect(await jsonOf(res)).toEqual({ error: 'not_found' });
  });

  it('POST /.well-known/openid-configuration: 405', async () => {
    const res = await fetch(`${sandbox.url}/.well-known/openid-configuration`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('GET /_sandbox/stats counts token requests', async () => {
    await postToken(sandbox, demoParams());
    await postToken(sandbox, demoParams({ client_secret: 'wrong' }));
    const res = await fetch(`${sandbox.url}/_sandbox/stats`);
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({
      tokenRequests: 2,
      byClient: { [DEMO_ID]: 2 },
      issued: 1,
      rejected: 1,
      faulted: 0,
    });
  });

  it('GET /_sandbox/requests lists the token requests without secrets', async () => {
    await postToken(sandbox, demoParams({ scope: 'deals-read' }));
    const res = await fetch(`${sandbox.url}/_sandbox/requests`);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual([
      {
        clientId: DEMO_ID,
        authMethod: 'client_secret_post',
        scope: 'deals-read',
        grantType: 'client_credentials',
        contentType: 'application/x-www-form-urlencoded',
        accept: 'application/json',
        acceptEncoding: expect.any(String),
        at: expect.any(Number),
        status: 200,
      },
    ]);
    expect(text).not.toContain(DEMO_SECRET);
  });

  it('POST /_sandbox/fault switches a fault on; GET shows it; DELETE clears it', async () => {
    const set = await json('POST', '/_sandbox/fault', {
      mode: 'status_503',
      retryAfter: 2,
      count: 2,
    });
    expect(set.status).toBe(200);
    expect(await jsonOf(set)).toEqual({
      fault: { mode: 'status_503', retryAfter: 2, count: 2, remaining: 2 },
    });

    expect((await postToken(sandbox, demoParams())).status).toBe(503);
    expect(await jsonOf(await json('GET', '/_sandbox/fault'))).toEqual({
      fault: { mode: 'status_503', retryAfter: 2, count: 2, remaining: 1 },
    });

    const cleared = await json('DELETE', '/_sandbox/fault');
    expect(cleared.status).toBe(200);
    expect(await jsonOf(cleared)).toEqual({ fault: null });
    expect((await postToken(sandbox, demoParams())).status).toBe(200);
  });

  it.each<[string, unknown, string]>([
    ['an unknown mode', { mode: 'boom' }, 'fault.mode must be one of'],
    ['an unknown field', { mode: 'slow', delay: 5 }, 'fault has an unknown field: delay'],
    [
      'a negative retryAfter',
      { mode: 'status_429', retryAfter: -1 },
      'fault.retryAfter must be a non-negative integer (seconds)',
    ],
    ['an array', [], 'fault must be a JSON object'],
  ])('POST /_sandbox/fault refuses %s with 400', async (_name, body, message) => {
    const res = await json('POST', '/_sandbox/fault', body);
    expect(res.status).toBe(400);
    const answer = await jsonOf(res);
    expect(answer.error).toBe('invalid_request');
    expect(answer.error_description).toContain(message);
  });

  it('POST /_sandbox/fault refuses a body that is not JSON', async () => {
    const res = await fetch(`${sandbox.url}/_sandbox/fault`, { method: 'POST', body: '{mode:' });
    expect(res.status).toBe(400);
    expect(await jsonOf(res)).toEqual({
      error: 'invalid_request',
      error_description: 'request body must be JSON',
    });
  });

  it('POST /_sandbox/reset zeroes the stats and clears the fault', async () => {
    await json('POST', '/_sandbox/fault', { mode: 'status_500' });
    await postToken(sandbox, demoParams());
    const res = await json('POST', '/_sandbox/reset');
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({
      tokenRequests: 0,
      byClient: {},
      issued: 0,
      rejected: 0,
      faulted: 0,
    });
    expect(sandbox.requests()).toEqual([]);
    expect((await postToken(sandbox, demoParams())).status).toBe(200);
  });

  it('PUT /_sandbox/clients/:clientId rotates a secret, keeping the scopes', async () => {
    const res = await json('PUT', `/_sandbox/clients/${encodeURIComponent(DEMO_ID)}`, {
      secret: 'rotated-secret',
    });
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({ clientId: DEMO_ID });
    try {
      expect((await postToken(sandbox, demoParams())).status).toBe(400);
      const rotated = await postToken(sandbox, demoParams({ client_secret: 'rotated-secret' }));
      expect(rotated.status).toBe(200);
      expect((await jsonOf(rotated)).scope).toBe('deals-read permissions-read');
    } finally {
      sandbox.setClientSecret(DEMO_ID, DEMO_SECRET);
    }
  });

  it('PUT /_sandbox/clients/:clientId adds a client with scopes (id percent-decoded)', async () => {
    const res = await json('PUT', '/_sandbox/clients/added%3Aclient', {
      secret: 's',
      scopes: ['x'],
    });
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({ clientId: 'added:client' });
    const token = await postToken(sandbox, {
      grant_type: 'client_credentials',
      client_id: 'added:client',
      client_secret: 's',
    });
    expect(token.status).toBe(200);
    expect((await jsonOf(token)).scope).toBe('x');
  });

  it('PUT /_sandbox/clients/:clientId refuses a missing secret', async () => {
    const res = await json('PUT', '/_sandbox/clients/x', { scopes: ['a'] });
    expect(res.status).toBe(400);
    expect(await jsonOf(res)).toEqual({
      error: 'invalid_request',
      error_description: 'client.secret must be a non-empty string',
    });
  });

  it('PUT /_sandbox/expires-in changes the lifetime of new tokens', async () => {
    const res = await json('PUT', '/_sandbox/expires-in', { seconds: 30 });
    expect(res.status).toBe(200);
    expect(await jsonOf(res)).toEqual({ expiresIn: 30 });
    try {
      expect((await jsonOf(await postToken(sandbox, demoParams()))).expires_in).toBe(30);
    } finally {
      sandbox.setExpiresIn(1200);
    }
  });

  it('PUT /_sandbox/expires-in refuses a non-integer', async () => {
    const res = await json('PUT', '/_sandbox/expires-in', { seconds: '30' });
    expect(res.status).toBe(400);
    expect(await jsonOf(res)).toEqual({
      error: 'invalid_request',
      error_description: 'seconds must be an integer from 1 to 315360000',
    });
  });
});
