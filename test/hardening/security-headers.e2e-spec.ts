import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { postLarge, expectStatus } from './harness';
import { httpRequest, type InProcessService, type SimpleResponse, startService } from '../support';

/**
 * Security headers (README API: "Cache-Control: no-store, Pragma: no-cache on every answer,
 * errors included", the OWASP REST set on JSON answers, helmet's full set on the Swagger UI)
 * on token, error, admin, health and metrics answers.
 */
const SECRET = 'headers-secret-0001';
const KEY = 'headers-caller-key-0001-aaaaaaaaaaaaaaa';
const ADMIN_KEY = 'headers-admin-key-0002-bbbbbbbbbbbbbbb';
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/**
 * What every JSON answer carries from helmet: the OWASP REST Security Cheat Sheet's headers for
 * all API answers (with Content-Type, Cache-Control and the CSP, checked below).
 */
const API_SECURITY = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY', // frameguard deny: agrees with the CSP's frame-ancestors 'none'
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

/** helmet's headers that act only on pages a browser renders: the Swagger UI has them. */
const HTML_ONLY = {
  'referrer-policy': 'no-referrer',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'x-xss-protection': '0',
};

describe('security headers (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'ok.client', secret: SECRET },
        { clientId: 'down.client', secret: SECRET },
        { clientId: 'refused.client', secret: 'the-idp-knows-another' },
      ],
    });
    svc = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 300 } },
      clients: ['ok.client', 'down.client', 'refused.client'].map((clientId) => ({
        clientId,
        environment: 'uat',
        secret: SECRET,
      })),
      callers: [
        { name: 'caller', keys: [KEY], clients: ['*'] },
        { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  /** A JSON answer: the API set, none of the HTML-only headers, nothing naming the server. */
  const expectHelmet = (res: SimpleResponse): void => {
    expect(res.headers).toMatchObject(API_SECURITY);
    for (const name of Object.keys(HTML_ONLY)) expect(res.headers[name]).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers.server).toBeUndefined();
  };
  const expectApiHeaders = (res: SimpleResponse, status: number): void => {
    expect(res.status).toBe(status);
    expectHelmet(res);
    expect(res.headers['content-security-policy']).toBe(API_CSP);
    expect(res.headers['content-type']).toMatch(/^(application\/json|text\/plain)/);
    expect(res.headers['content-type']).toMatch(/charset=utf-8/);
  };
  const expectNoStore = (res: SimpleResponse): void => {
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
  };

  const tokenCases: [string, () => Promise<SimpleResponse>, number][] = [
    ['200 token', () => httpRequest(`${svc.url}/tokens/ok.client`, { key: KEY }), 200],
    ['400 malformed id', () => httpRequest(`${svc.url}/tokens/bad%20id`, { key: KEY }), 400],
    [
      '400 bad minTtl',
      () => httpRequest(`${svc.url}/tokens/ok.client?minTtl=x`, { key: KEY }),
      400,
    ],
    [
      '400 key in query',
      () => httpRequest(`${svc.url}/tokens/ok.client?access_token=x`, { key: KEY }),
      400,
    ],
    [
      '401 no key',
      () => httpRequest(`${svc.url}/tokens/ok.client`, { localAddress: '127.0.0.2' }),
      401,
    ],
    ['404 unknown client', () => httpRequest(`${svc.url}/tokens/none.client`, { key: KEY }), 404],
    ['502 refused', () => httpRequest(`${svc.url}/tokens/refused.client`, { key: KEY }), 502],
    [
      '503 IdP failing',
      async () => {
        idp.setFault({ mode: 'html', count: 1 });
        return httpRequest(`${svc.url}/tokens/down.client`, { key: KEY });
      },
      503,
    ],
    [
      '429 limited source',
      async () => {
        for (let i = 0; i < 10; i++)
          await httpRequest(`${svc.url}/tokens/ok.client`, { localAddress: '127.0.0.3' });
        return httpRequest(`${svc.url}/tokens/ok.client`, {
          key: 'not-a-key',
          localAddress: '127.0.0.3',
        });
      },
      429,
    ],
  ];

  it.each(tokenCases)(
    'token answer %s: API security headers, CSP, no-store + no-cache',
    async (_n, send, status) => {
      const res = await send();
      expectApiHeaders(res, status);
      expectNoStore(res);
    },
  );

  const adminCases: [string, () => Promise<SimpleResponse>, number][] = [
    [
      '200 GET /admin/clients',
      () => httpRequest(`${svc.url}/admin/clients`, { key: ADMIN_KEY }),
      200,
    ],
    [
      '200 POST refresh',
      () =>
        httpRequest(`${svc.url}/admin/clients/ok.client/refresh`, {
          key: ADMIN_KEY,
          method: 'POST',
        }),
      200,
    ],
    [
      '200 POST reload',
      () => httpRequest(`${svc.url}/admin/reload`, { key: ADMIN_KEY, method: 'POST' }),
      200,
    ],
    [
      '400 refresh of an unknown client',
      () =>
        httpRequest(`${svc.url}/admin/clients/none.client/refresh`, {
          key: ADMIN_KEY,
          method: 'POST',
        }),
      400,
    ],
    [
      '502 refresh refused by the IdP',
      () =>
        httpRequest(`${svc.url}/admin/clients/refused.client/refresh`, {
          key: ADMIN_KEY,
          method: 'POST',
        }),
      502,
    ],
    [
      '401 no key',
      () => httpRequest(`${svc.url}/admin/clients`, { localAddress: '127.0.0.4' }),
      401,
    ],
    ['403 not an admin', () => httpRequest(`${svc.url}/admin/clients`, { key: KEY }), 403],
    [
      '400 malformed JSON body',
      () =>
        httpRequest(`${svc.url}/admin/reload`, {
          key: ADMIN_KEY,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{',
        }),
      400,
    ],
  ];

  it.each(adminCases)(
    'admin answer %s: API security headers, CSP, no-store',
    async (_n, send, status) => {
      const res = await send();
      expectApiHeaders(res, status);
      expect(res.headers['cache-control']).toBe('no-store');
    },
  );

  it('admin 413 (body over 16 KiB): API security headers, CSP, no-store', async () => {
    const res = await postLarge(
      svc.url,
      '/admin/reload',
      { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      Buffer.alloc(1024 * 1024, 'a'),
    );
    expectStatus(res, 413);
    expect(res.headers).toMatchObject({
      ...API_SECURITY,
      'content-security-policy': API_CSP,
      'cache-control': 'no-store',
    });
  });

  it.each([
    ['/health/live', 200],
    ['/health/ready', 200],
    ['/metrics', 404], // served on METRICS_PORT only
    ['/docs-json', 200],
    ['/no-such-endpoint', 404],
  ])('operations answer %s: API security headers and the API CSP', async (path, status) => {
    const res = await httpRequest(svc.url + path);
    expectApiHeaders(res, status);
  });

  it("the Swagger UI page has all of helmet's headers but not the API CSP (it runs scripts)", async () => {
    const res = await httpRequest(`${svc.url}/docs`);
    expectStatus(res, 200);
    expect(res.headers).toMatchObject({ ...API_SECURITY, ...HTML_ONLY });
    expect(res.headers['content-security-policy']).toBeUndefined();
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it.each([
    ['a malformed percent-encoding in the path', '/tokens/%E0%A4%A'],
    ['a client id longer than maxParamLength (1024)', `/tokens/${'a'.repeat(1025)}`],
  ])(
    'an answer Fastify writes itself (%s) still carries the security headers and no-store',
    async (_n, path) => {
      const res = await httpRequest(svc.url + path, { key: KEY });
      // The status and body are edge-input's concern; here: the same headers as every answer.
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expectHelmet(res);
      expect(res.headers['content-security-policy']).toBe(API_CSP);
      expect(res.headers['cache-control']).toBe('no-store');
    },
  );
});
