import { createServer, type Server } from 'node:http';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { createTokenVendorClient } from '@token-vendor/client';
import { httpRequest, type InProcessService, startService } from '../support';

/**
 * fetchWithToken's downstream-401 path against the real service's
 * `POST /tokens/:clientId/rejections` and the sandbox IdP: the downstream test API below accepts
 * only the token the service currently vends (it asks the service itself, as another caller),
 * minus any token the test has revoked at the "resource server".
 */
const SECRET = 'sandbox-secret-rejection-0001';
const KEY = 'caller-key-rejection-0001-aaaaaaaaaaaaaaa';
const KEY_DOWNSTREAM = 'caller-key-downstream-0002-bbbbbbbbbbbbbb';
const KEY_ADMIN = 'caller-key-admin-0003-cccccccccccccccccc';

interface DownstreamApi {
  url: string;
  /** The bearer of each request it received, in order. */
  seen: string[];
  /** Tokens it refuses even when the service still vends them (revoked at the resource). */
  revoked: Set<string>;
  /** Refuse everything. */
  refuseAll: boolean;
  close(): Promise<void>;
}

async function startDownstreamApi(vendorUrl: string, clientId: string): Promise<DownstreamApi> {
  const api: Omit<DownstreamApi, 'url' | 'close'> = {
    seen: [],
    revoked: new Set(),
    refuseAll: false,
  };
  const server: Server = createServer((req, res) => {
    const bearer = (req.headers.authorization ?? '').replace(/^Bearer /, '');
    api.seen.push(bearer);
    void httpRequest(`${vendorUrl}/tokens/${clientId}`, {
      headers: { authorization: `Bearer ${KEY_DOWNSTREAM}` },
    }).then((current) => {
      const accepted =
        !api.refuseAll && !api.revoked.has(bearer) && bearer === current.json().access_token;
      res.writeHead(accepted ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(accepted ? { ok: true } : { error: 'invalid_token' }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return Object.assign(api, {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

describe('fetchWithToken: downstream 401 → report → new token → one retry (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'moved-on.client', secret: SECRET },
        { clientId: 'revoked.client', secret: SECRET },
        { clientId: 'refusing.client', secret: SECRET },
      ],
    });
    svc = await startService({
      scheduler: false,
      redis: true,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: ['moved-on.client', 'revoked.client', 'refusing.client'].map((clientId) => ({
        clientId,
        environment: 'uat',
        secret: SECRET,
      })),
      callers: [
        { name: 'sdk-service', keys: [KEY], clients: ['*'] },
        { name: 'downstream-api', keys: [KEY_DOWNSTREAM], clients: ['*'] },
        { name: 'admin', keys: [KEY_ADMIN], clients: [], admin: true },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  function sdk() {
    const sent: string[] = [];
    const client = createTokenVendorClient({
      baseUrl: svc.url,
      callerKey: KEY,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (url.startsWith(svc.url))
          sent.push(`${init?.method ?? 'GET'} ${url.slice(svc.url.length)}`);
        return fetch(input, init);
      },
    });
    return { client, sent };
  }

  it('the service already moved on: the report answers its current token, no IdP request', async () => {
    const api = await startDownstreamApi(svc.url, 'moved-on.client');
    try {
      const { client, sent } = sdk();
      const held = await client.getToken('moved-on.client');
      await new Promise((r) => setTimeout(r, 20));
      const refresh = await httpRequest(`${svc.url}/admin/clients/moved-on.client/refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_ADMIN}` },
      });
      expect(refresh.status).toBe(200);
      idp.resetStats();

      const res = await client.fetchWithToken('moved-on.client', `${api.url}/deals`);

      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ok: true });
      expect(api.seen).toHaveLength(2);
      expect(api.seen[0]).toBe(held.access_token);
      expect(api.seen[1]).not.toBe(held.access_token);
      expect(sent).toEqual([
        'GET /tokens/moved-on.client',
        'POST /tokens/moved-on.client/rejections',
      ]);
      expect(idp.stats().tokenRequests).toBe(0);
      // The answer is held: no further request for the next call.
      expect((await client.getToken('moved-on.client')).access_token).toBe(api.seen[1]);
      expect(sent).toHaveLength(2);
    } finally {
      await api.close();
    }
  });

  it('the current token was revoked at the resource: the report makes the IdP issue one new token', async () => {
    const api = await startDownstreamApi(svc.url, 'revoked.client');
    try {
      const { client, sent } = sdk();
      const held = await client.getToken('revoked.client');
      api.revoked.add(held.access_token);
      idp.resetStats();

      const res = await client.fetchWithToken('revoked.client', `${api.url}/deals`, {
        method: 'POST',
        body: JSON.stringify({ deal: 1 }),
        headers: { 'content-type': 'application/json' },
      });

      expect(res.status).toBe(200);
      expect(api.seen).toHaveLength(2);
      expect(api.seen[0]).toBe(held.access_token);
      expect(api.seen[1]).not.toBe(held.access_token);
      expect(sent).toEqual([
        'GET /tokens/revoked.client',
        'POST /tokens/revoked.client/rejections',
      ]);
      expect(idp.stats().byClient).toEqual({ 'revoked.client': 1 });
      // The service was told which token by its SHA-256 only: no log line carries the token.
      expect(svc.logs.lines.join('\n')).not.toContain(held.access_token);
    } finally {
      await api.close();
    }
  });

  it('a downstream that refuses every token gets exactly one retry, and its 401 comes back', async () => {
    const api = await startDownstreamApi(svc.url, 'refusing.client');
    api.refuseAll = true;
    try {
      const { client, sent } = sdk();
      const res = await client.fetchWithToken('refusing.client', `${api.url}/deals`);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'invalid_token' });
      expect(api.seen).toHaveLength(2);
      expect(sent).toEqual([
        'GET /tokens/refusing.client',
        'POST /tokens/refusing.client/rejections',
      ]);
    } finally {
      await api.close();
    }
  });
});
