import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { MetricsService } from '@app/observability';
import {
  CallerUnauthorizedError,
  InvalidRequestError,
  TooManyRequestsError,
  UnknownClientError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
  VendorUnreachableError,
  createTokenVendorClient,
  type TokenVendorClientOptions,
} from '@token-vendor/client';
import { freePort, httpRequest, type InProcessService, startService, TestClock } from '../support';

/**
 * The caller SDK against the real service (built as main.ts builds it, on a real Redis) and the
 * sandbox IdP, over real sockets. The SDK's transport is the global fetch, wrapped only to count
 * the requests it sends; the service's own request counter is checked beside it.
 */
const SECRET = 'sandbox-secret-client-0001';
const KEY = 'caller-key-sdk-0001-aaaaaaaaaaaaaaaaaaaa';
const KEY_ROTATED = 'caller-key-sdk-0002-bbbbbbbbbbbbbbbbbbbb';
const KEY_ADMIN = 'caller-key-admin-0003-cccccccccccccccccc';

describe('@token-vendor/client against the service (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'deals.client', secret: SECRET, scopes: ['deals-read'] },
        { clientId: 'herd.client', secret: SECRET },
        { clientId: 'expiring.client', secret: SECRET },
        { clientId: 'flaky.client', secret: SECRET },
        { clientId: 'wrong.client', secret: 'the-secret-the-idp-knows' },
      ],
      expiresIn: 1200,
    });
    svc = await startService({
      scheduler: false,
      redis: true,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: [
        { clientId: 'deals.client', environment: 'uat', secret: SECRET, scope: 'deals-read' },
        { clientId: 'herd.client', environment: 'uat', secret: SECRET },
        { clientId: 'expiring.client', environment: 'uat', secret: SECRET },
        { clientId: 'flaky.client', environment: 'uat', secret: SECRET },
        { clientId: 'wrong.client', environment: 'uat', secret: 'not-what-the-idp-knows' },
      ],
      callers: [
        { name: 'sdk-service', keys: [KEY], clients: ['*'] },
        { name: 'rotated-service', keys: [KEY_ROTATED], clients: ['uat/deals.client'] },
        { name: 'admin', keys: [KEY_ADMIN], clients: [], admin: true },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  beforeEach(() => idp.clearFault());

  /** A client whose transport is the global fetch, counting what it sends. */
  function sdk(options: Partial<TokenVendorClientOptions> = {}) {
    const sent: string[] = [];
    const client = createTokenVendorClient({
      baseUrl: svc.url,
      callerKey: options.callerKeyFile ? undefined : KEY,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (url.startsWith(svc.url))
          sent.push(`${init?.method ?? 'GET'} ${url.slice(svc.url.length)}`);
        return fetch(input, init);
      },
      ...options,
    });
    return { client, sent };
  }

  /** GET /tokens requests the service counted for a client, whatever their outcome. */
  async function servedCount(clientId: string): Promise<number> {
    const metric = await svc.app.get(MetricsService).tokenRequests.get();
    return metric.values
      .filter((v) => v.labels.client_id === clientId)
      .reduce((sum, v) => sum + v.value, 0);
  }

  it('cache hits send no HTTP request: 1,000 getToken, one request to the service, one to the IdP', async () => {
    idp.resetStats();
    const { client, sent } = sdk();
    const first = await client.getToken('deals.client', { environment: 'uat' });
    for (let i = 0; i < 999; i++) {
      expect(await client.getToken('deals.client', { environment: 'uat' })).toBe(first);
    }
    expect(first).toMatchObject({
      token_type: 'Bearer',
      client_id: 'deals.client',
      environment: 'uat',
      scope: 'deals-read',
    });
    expect(first.access_token.split('.')).toHaveLength(3);
    expect(sent).toEqual(['GET /tokens/deals.client?environment=uat']);
    expect(await servedCount('deals.client')).toBe(1);
    expect(idp.stats().tokenRequests).toBe(1);
  }, 20_000);

  it('100 concurrent getToken calls send one request', async () => {
    idp.resetStats();
    const { client, sent } = sdk();
    const tokens = await Promise.all(
      Array.from({ length: 100 }, () => client.getToken('herd.client')),
    );
    expect(new Set(tokens.map((t) => t.access_token)).size).toBe(1);
    expect(sent).toEqual(['GET /tokens/herd.client']);
    expect(await servedCount('herd.client')).toBe(1);
    expect(idp.stats().byClient).toEqual({ 'herd.client': 1 });
  });

  it('a token near its expiry is asked for again and replaced by the service’s current one', async () => {
    const clock = new TestClock({ start: Date.now() });
    const { client, sent } = sdk({ clock });
    const old = await client.getToken('expiring.client');
    // The service moves on to a new token (an operator's refresh); the SDK still holds the old one.
    await new Promise((r) => setTimeout(r, 20));
    const refresh = await httpRequest(`${svc.url}/admin/clients/expiring.client/refresh`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_ADMIN}` },
    });
    expect(refresh.status).toBe(200);

    await clock.advance((old.expires_in - 61) * 1000); // 61 s left: still outside the margin
    expect(await client.getToken('expiring.client')).toBe(old);
    expect(sent).toHaveLength(1);

    await clock.advance(2_000); // 59 s left: inside the 60 s margin
    const next = await client.getToken('expiring.client');
    expect(next.access_token).not.toBe(old.access_token);
    expect(sent).toEqual(['GET /tokens/expiring.client', 'GET /tokens/expiring.client']);
    expect(await servedCount('expiring.client')).toBe(2);
  });

  it('fetchWithToken sends the held token to a real downstream and returns its answer', async () => {
    let seenAuthorization: string | undefined;
    const downstream: Server = createServer((req, res) => {
      seenAuthorization = req.headers.authorization;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"deals":[]}');
    });
    await new Promise<void>((r) => downstream.listen(0, '127.0.0.1', r));
    try {
      const { client, sent } = sdk();
      const token = await client.getToken('deals.client', { environment: 'uat' });
      const address = downstream.address() as { port: number };
      const res = await client.fetchWithToken(
        'deals.client',
        `http://127.0.0.1:${address.port}/deals`,
        undefined,
        { environment: 'uat' },
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deals: [] });
      expect(seenAuthorization).toBe(`Bearer ${token.access_token}`);
      expect(sent).toEqual(['GET /tokens/deals.client?environment=uat']);
    } finally {
      await new Promise((r) => downstream.close(r));
    }
  });

  it('a rotated callerKeyFile is picked up without a new client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tv-sdk-key-'));
    try {
      const file = join(dir, 'caller-key');
      writeFileSync(file, 'a-key-the-service-does-not-know-00000000\n');
      const { client, sent } = sdk({ callerKeyFile: file });
      await expect(client.getToken('deals.client')).rejects.toBeInstanceOf(CallerUnauthorizedError);
      // Rotated the way a Kubernetes Secret volume does it: a new file swapped in by rename.
      writeFileSync(join(dir, 'caller-key.new'), `${KEY_ROTATED}\n`);
      renameSync(join(dir, 'caller-key.new'), file);
      const token = await client.getToken('deals.client');
      expect(token.client_id).toBe('deals.client');
      expect(sent).toEqual(['GET /tokens/deals.client', 'GET /tokens/deals.client']);
      // The service's audit names the caller the new key belongs to.
      expect(
        svc.logs.audit().filter((l) => l.caller === 'rotated-service' && l.outcome === 'served'),
      ).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('typed errors for each status', () => {
    it.each([
      ['400', 'deals.client', { environment: 'nowhere' }, InvalidRequestError, 'invalid_request'],
      ['400', 'deals.client', { minTtl: 100_000 }, InvalidRequestError, 'invalid_request'],
      ['404', 'no-such.client', {}, UnknownClientError, 'unknown_client'],
      ['502', 'wrong.client', {}, UpstreamRejectedError, 'upstream_rejected'],
    ])('%s for %s %j', async (status, clientId, options, type, code) => {
      const { client, sent } = sdk();
      const error = await client.getToken(clientId, options).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(type);
      expect(error).toMatchObject({ status: Number(status), code });
      expect(sent).toHaveLength(1); // not retried
    });

    it('401 for an unknown caller key, not retried', async () => {
      const { client, sent } = sdk({ callerKey: 'not-a-caller-key-000000000000000000' });
      const error = await client.getToken('deals.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CallerUnauthorizedError);
      expect(error).toMatchObject({ status: 401, code: 'unauthorized' });
      expect(sent).toHaveLength(1);
    });

    it('503 is retried honouring Retry-After, then typed', async () => {
      idp.setFault({ mode: 'status_503' });
      const clock = new TestClock({ start: 'system', sleeps: 'skip' });
      const { client, sent } = sdk({ clock, maxAttempts: 2 });
      const error = await client.getToken('flaky.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ status: 503, code: 'upstream_unavailable' });
      expect(sent).toEqual(['GET /tokens/flaky.client', 'GET /tokens/flaky.client']);
      // The service's Retry-After (seconds) was the floor of the one wait.
      const retryAfter = (error as UpstreamUnavailableError).retryAfterSeconds!;
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(clock.sleeps).toEqual([retryAfter * 1000]);

      idp.clearFault();
      expect((await client.getToken('flaky.client')).client_id).toBe('flaky.client');
    }, 30_000);

    it('a service that cannot be reached is retried, then VendorUnreachableError', async () => {
      const port = await freePort();
      const clock = new TestClock({ start: 'system', sleeps: 'skip' });
      const client = createTokenVendorClient({
        baseUrl: `http://127.0.0.1:${port}`,
        callerKey: KEY,
        clock,
        maxAttempts: 3,
      });
      const error = await client.getToken('deals.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VendorUnreachableError);
      expect((error as Error).message).toContain('ECONNREFUSED');
      expect(clock.sleeps).toHaveLength(2);
    });

    it('429 after repeated failed authentications, not retried', async () => {
      // Its own service instance: the failed-auth limit is per source address, and every
      // test here calls from 127.0.0.1.
      const locked = await startService({
        scheduler: false,
        environments: { uat: { tokenUrl: idp.tokenUrl } },
        clients: [{ clientId: 'deals.client', environment: 'uat', secret: SECRET }],
        callers: [{ name: 'sdk-service', keys: [KEY], clients: ['*'] }],
      });
      try {
        const client = createTokenVendorClient({
          baseUrl: locked.url,
          callerKey: 'not-a-caller-key-000000000000000000',
        });
        for (let i = 0; i < 10; i++) {
          await expect(client.getToken('deals.client')).rejects.toBeInstanceOf(
            CallerUnauthorizedError,
          );
        }
        const error = await client.getToken('deals.client').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(TooManyRequestsError);
        expect(error).toMatchObject({ status: 429, code: 'too_many_requests' });
        expect((error as TooManyRequestsError).retryAfterSeconds).toBeGreaterThan(0);
      } finally {
        await locked.close();
      }
    });
  });
});
