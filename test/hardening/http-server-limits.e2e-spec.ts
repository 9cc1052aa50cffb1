import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { FAILED_AUTH_LIMIT } from '@app/auth';
import { HTTP_SERVER_TIMEOUTS } from '@app/token-vendor';
import { expectError, rawRequest } from './harness';
import { httpRequest, type InProcessService, startService } from '../support';

/**
 * The HTTP server's own limits (README "HTTP server"): a request that carries a body is
 * authenticated before any of the body is read (an unauthenticated sender can make the service
 * neither buffer a body nor wait for one), and callers that send their headers or body too
 * slowly are cut off (408) instead of holding a connection open.
 */
const SECRET = 'limits-secret-0001';
const ADMIN_KEY = 'limits-admin-key-0001-aaaaaaaaaaaaaaaaaaaa';
const UNAUTHORIZED = 'A valid caller key is required (Authorization: Bearer <key>).';

function rawPost(headers: string[], body = ''): string {
  return ['POST /admin/reload HTTP/1.1', 'Host: token-vendor', ...headers, '', body].join('\r\n');
}

describe('HTTP server limits (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  let fast: InProcessService;
  const options = () => ({
    scheduler: false,
    environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
    clients: [{ clientId: 'limits.client', environment: 'uat', secret: SECRET }],
    callers: [{ name: 'ops', keys: [ADMIN_KEY], clients: ['*'], admin: true }],
  });

  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [{ clientId: 'limits.client', secret: SECRET }] });
    svc = await startService(options());
    fast = await startService({
      ...options(),
      httpTimeouts: { headersTimeoutMs: 400, requestTimeoutMs: 800, checkIntervalMs: 100 },
    });
  });

  afterAll(async () => {
    await svc?.close();
    await fast?.close();
    await idp?.close();
  });

  describe('authentication before the body', () => {
    it('answers 401 at once to a body that was announced but never sent', async () => {
      const started = Date.now();
      const res = await rawRequest(
        svc.port,
        rawPost(['Content-Type: application/json', 'Content-Length: 100']),
        { timeoutMs: 5000, localAddress: '127.0.0.151' },
      );
      expect(res.status).toBe(401);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(res.head).toMatch(/\r\nconnection: close/i);
      expect(res.head).toMatch(/\r\nwww-authenticate: Bearer realm="token-vendor"/i);
      expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', message: UNAUTHORIZED });
    });

    it('answers 401, not 413, to an oversized body without a key (it is never read)', async () => {
      const res = await rawRequest(
        svc.port,
        rawPost(['Content-Type: application/json', `Content-Length: ${1024 * 1024}`]),
        { timeoutMs: 5000, localAddress: '127.0.0.152' },
      );
      expect(res.status).toBe(401);
    });

    it('answers 401 to a chunked body without a key, and a bad key counts as a failure', async () => {
      const source = '127.0.0.153';
      for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
        const res = await rawRequest(
          svc.port,
          rawPost([
            'Authorization: Bearer not-a-key',
            'Content-Type: application/json',
            'Transfer-Encoding: chunked',
          ]),
          { timeoutMs: 5000, localAddress: source },
        );
        expect(res.status).toBe(401);
      }
      const limited = await rawRequest(
        svc.port,
        rawPost(['Content-Type: application/json', 'Content-Length: 10']),
        { timeoutMs: 5000, localAddress: source },
      );
      expect(limited.status).toBe(429);
      const refused = svc.logs
        .audit()
        .filter((l) => l.source === source && l.msg === 'request refused');
      expect(refused.map((l) => l.outcome)).toEqual([
        ...Array<string>(FAILED_AUTH_LIMIT).fill('unauthorized'),
        'too_many_requests',
      ]);
    });

    it('still reads the body of an authenticated caller (and refuses a key inside it)', async () => {
      const ok = await httpRequest(`${svc.url}/admin/reload`, {
        key: ADMIN_KEY,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(ok.status).toBe(200);
      const keyInBody = await httpRequest(`${svc.url}/admin/reload`, {
        key: ADMIN_KEY,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ access_token: ADMIN_KEY }),
      });
      expectError(keyInBody, 400, 'invalid_request');
    });

    it('leaves bodies to unknown paths to the router (404)', async () => {
      const res = await httpRequest(`${svc.url}/no-such-path`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expectError(res, 404, 'not_found');
    });
  });

  describe('timeouts', () => {
    it('sets the production limits on the server by default', () => {
      const server = svc.app.getHttpServer();
      expect({
        headersTimeout: server.headersTimeout,
        requestTimeout: server.requestTimeout,
      }).toEqual({
        headersTimeout: HTTP_SERVER_TIMEOUTS.headersTimeoutMs,
        requestTimeout: HTTP_SERVER_TIMEOUTS.requestTimeoutMs,
      });
      expect(HTTP_SERVER_TIMEOUTS.headersTimeoutMs).toBeLessThanOrEqual(10_000);
      expect(HTTP_SERVER_TIMEOUTS.requestTimeoutMs).toBeLessThanOrEqual(30_000);
    });

    it('cuts off a caller whose headers never end (408)', async () => {
      const started = Date.now();
      const res = await rawRequest(
        fast.port,
        'GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n',
        {
          timeoutMs: 5000,
        },
      );
      expect(res.status).toBe(408);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('cuts off an authenticated caller whose body never ends (408)', async () => {
      const started = Date.now();
      const res = await rawRequest(
        fast.port,
        rawPost(
          [
            `Authorization: Bearer ${ADMIN_KEY}`,
            'Content-Type: application/json',
            'Content-Length: 100',
          ],
          '{"partial":',
        ),
        { timeoutMs: 5000 },
      );
      expect(res.status).toBe(408);
      expect(Date.now() - started).toBeLessThan(3500);
    });

    it('does not cut off a token request that waits for the IdP longer than the request timeout', async () => {
      // The limits bound receiving the request, never the answer: a fetch may take timeoutMs × 3.
      idp.setFault({ mode: 'slow', delayMs: 1500 });
      try {
        const started = Date.now();
        const res = await httpRequest(`${fast.url}/tokens/limits.client`, { key: ADMIN_KEY });
        expect(res.status).toBe(200);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
      } finally {
        idp.clearFault();
      }
    });
  });
});
