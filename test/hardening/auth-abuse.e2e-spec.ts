import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { FAILED_AUTH_LIMIT, FAILED_AUTH_WINDOW_MS } from '@app/auth';
import { expectAlive, expectError, expectStatus } from './harness';
import {
  httpRequest,
  type InProcessService,
  type SimpleResponse,
  startService,
  TestClock,
} from '../support';

/**
 * Abuse of caller authentication (README "Callers", the 429 row of the error table): failed
 * authentications are limited per source address (10 per 60 s → 429 with Retry-After until
 * the window ends), callers on other sources are unaffected, a valid key is let in whatever
 * its address did (a mesh sidecar or NAT puts every caller behind one address), the limit
 * cannot be dodged or aimed at someone else with X-Forwarded-For unless it comes from a
 * `TRUSTED_PROXIES` address, and an unknown client and a client the caller may not use
 * answer byte for byte the same.
 *
 * Sources are played with loopback addresses (127.0.0.0/8 all reach 127.0.0.1 on Linux).
 */
const SECRET = 'auth-abuse-secret-0001';
const KEY = 'auth-abuse-caller-key-0001-aaaaaaaaaaaa';
const KEY_NARROW = 'auth-abuse-narrow-key-0002-bbbbbbbbbbbb';
const UNAUTHORIZED = 'A valid caller key is required (Authorization: Bearer <key>).';
const TOO_MANY = 'Too many failed authentications from this source; retry later.';

describe('failed authentication limits and enumeration (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  const clock = new TestClock({ start: 'system', sleeps: 'real' });

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: ['deals.client', 'secret.client', 'shared.client'].map((clientId) => ({
        clientId,
        secret: SECRET,
      })),
    });
    svc = await startService({
      scheduler: false,
      clock,
      environments: {
        uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 },
        production: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 },
      },
      clients: [
        { clientId: 'deals.client', environment: 'uat', secret: SECRET },
        { clientId: 'secret.client', environment: 'uat', secret: SECRET },
        { clientId: 'shared.client', environment: 'uat', secret: SECRET },
        { clientId: 'shared.client', environment: 'production', secret: SECRET },
      ],
      callers: [
        { name: 'wide', keys: [KEY], clients: ['*'] },
        { name: 'narrow', keys: [KEY_NARROW], clients: ['deals.client', 'uat/shared.client'] },
      ],
    });
    // Warm the token so good callers are served from memory.
    expectStatus(await httpRequest(`${svc.url}/tokens/deals.client`, { key: KEY }), 200);
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  const bad = (source: string, headers: Record<string, string | string[]> = {}) =>
    httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: source,
      headers: { authorization: 'Bearer not-a-caller-key', ...headers },
    });
  const good = (source: string, headers: Record<string, string> = {}) =>
    httpRequest(`${svc.url}/tokens/deals.client`, { key: KEY, localAddress: source, headers });
  const expect401 = (res: SimpleResponse): void => {
    expectError(res, 401, 'unauthorized', UNAUTHORIZED);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="token-vendor"');
  };
  const expect429 = (res: SimpleResponse): number => {
    expectError(res, 429, 'too_many_requests', TOO_MANY);
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(FAILED_AUTH_WINDOW_MS / 1000);
    return retryAfter;
  };

  it('limits a flooding source to 10 failures a minute (429 + Retry-After), while callers on other sources, and valid keys on the same one, are unaffected', async () => {
    const attacker = '127.0.0.21';
    const bystanders = ['127.0.0.22', '127.0.0.23', '127.0.0.24'];
    // The flood and the good callers at the same time.
    const [flood, goods] = await Promise.all([
      Promise.all(Array.from({ length: 40 }, () => bad(attacker))),
      Promise.all(bystanders.flatMap((s) => Array.from({ length: 10 }, () => good(s)))),
    ]);
    for (const res of goods) expectStatus(res, 200);
    const statuses = flood.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(FAILED_AUTH_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(40 - FAILED_AUTH_LIMIT);
    for (const res of flood) (res.status === 401 ? expect401 : expect429)(res);

    // The attacker's address stays limited for bad keys, but a caller with a valid key behind
    // the same address (a sidecar, a NAT) is served: others' failures never lock it out.
    expect429(await bad(attacker));
    for (let i = 0; i < 5; i++) expectStatus(await good(attacker), 200);
    expect429(await bad(attacker));
    // Another source failing a few times is counted on its own: still 401, not 429.
    for (let i = 0; i < FAILED_AUTH_LIMIT - 1; i++) expect401(await bad('127.0.0.25'));
    expectStatus(await good('127.0.0.25'), 200);
    await expectAlive(svc.url);
  });

  it('counts every kind of failed authentication: missing, unknown, empty, Basic, duplicate headers, commas', async () => {
    const source = '127.0.0.31';
    const failures: Record<string, string | string[]>[] = [
      {},
      { authorization: 'Bearer unknown-key' },
      { authorization: 'Bearer ' },
      { authorization: 'Bearer' },
      { authorization: `Basic ${Buffer.from(`x:${KEY}`).toString('base64')}` },
      { authorization: `Token ${KEY}` },
      { authorization: `Bearer ${KEY}, Bearer other` },
      { authorization: ['Bearer unknown-a', 'Bearer unknown-b'] },
      { authorization: `Bearer  ${KEY}` },
      { authorization: `Bearer ${KEY} extra` },
    ];
    for (const headers of failures) {
      expect401(
        await httpRequest(`${svc.url}/tokens/deals.client`, { localAddress: source, headers }),
      );
    }
    expect(failures).toHaveLength(FAILED_AUTH_LIMIT);
    expect429(await bad(source));
    expect429(await httpRequest(`${svc.url}/tokens/deals.client`, { localAddress: source }));
    expectStatus(await good(source), 200);
  });

  it('does not count failures of authenticated callers (400, 404) against their source', async () => {
    const source = '127.0.0.41';
    for (let i = 0; i < FAILED_AUTH_LIMIT + 5; i++) {
      const res = await httpRequest(`${svc.url}/tokens/no-such-${i}.client`, {
        key: KEY,
        localAddress: source,
      });
      expectError(res, 404, 'unknown_client');
      expectError(
        await httpRequest(`${svc.url}/tokens/bad%20id`, { key: KEY, localAddress: source }),
        400,
        'invalid_request',
      );
    }
    expectStatus(await good(source), 200);
  });

  it('ignores X-Forwarded-For: the limit can be neither dodged nor aimed at another caller', async () => {
    const attacker = '127.0.0.51';
    for (let i = 0; i < FAILED_AUTH_LIMIT + 5; i++) {
      const res = await bad(attacker, {
        'x-forwarded-for': `10.0.${i}.1`,
        'x-real-ip': `10.1.${i}.1`,
      });
      if (i < FAILED_AUTH_LIMIT) expect401(res);
      else expect429(res);
    }
    // A caller whose address the attacker put in X-Forwarded-For is not limited.
    const spoofedVictim = '127.0.0.52';
    for (let i = 0; i < FAILED_AUTH_LIMIT + 2; i++) {
      await bad(attacker, { 'x-forwarded-for': spoofedVictim });
    }
    expectStatus(await good(spoofedVictim), 200);
    expectStatus(await good(spoofedVictim, { 'x-forwarded-for': attacker }), 200);
  });

  it('Retry-After says when the window ends; after it the source may try again', async () => {
    const source = '127.0.0.61';
    for (let i = 0; i < FAILED_AUTH_LIMIT; i++) expect401(await bad(source));
    const first = expect429(await bad(source));
    expect(first).toBeGreaterThanOrEqual(FAILED_AUTH_WINDOW_MS / 1000 - 2);
    await clock.advance(30_000);
    const later = expect429(await bad(source));
    expect(later).toBeLessThanOrEqual(first - 29);
    expect(later).toBeGreaterThanOrEqual(first - 31);
    await clock.advance(later * 1000);
    // A fresh window: failures count again from zero.
    for (let i = 0; i < FAILED_AUTH_LIMIT; i++) expect401(await bad(source));
    expect429(await bad(source));
    expectStatus(await good(source), 200);
  });

  /** Status, headers (except Date) in order, and body bytes. */
  const wire = (res: SimpleResponse): unknown => ({
    status: res.status,
    // The request id differs by design (each answer names its own request).
    headers: Object.entries(res.headers).filter(([n]) => n !== 'date' && n !== 'x-request-id'),
    body: res.text,
  });

  it.each([
    ['unknown client vs not allowed', '/tokens/no-such.client', '/tokens/secret.client'],
    [
      'unknown client vs not allowed, with ?environment=',
      '/tokens/no-such.client?environment=uat',
      '/tokens/secret.client?environment=uat',
    ],
    [
      'client absent from that environment vs not allowed in it',
      '/tokens/deals.client?environment=production',
      '/tokens/shared.client?environment=production',
    ],
    ['id of the same length', '/tokens/zzzzzz.client', '/tokens/secret.client'],
  ])('%s: byte-identical answers', async (_case, unknownPath, notAllowedPath) => {
    const unknown = await httpRequest(svc.url + unknownPath, {
      key: KEY_NARROW,
      localAddress: '127.0.0.71',
    });
    const notAllowed = await httpRequest(svc.url + notAllowedPath, {
      key: KEY_NARROW,
      localAddress: '127.0.0.71',
    });
    expectError(unknown, 404, 'unknown_client', 'No such client is available to this caller.');
    expect(wire(notAllowed)).toEqual(wire(unknown));
  });

  it('answers a missing key and an unknown key byte-identically (401)', async () => {
    const missing = await httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: '127.0.0.81',
    });
    const unknown = await httpRequest(`${svc.url}/tokens/deals.client`, {
      key: 'nope',
      localAddress: '127.0.0.82',
    });
    expect401(missing);
    expect(wire(unknown)).toEqual(wire(missing));
  });

  it('refuses duplicate Authorization headers whatever their order (RFC 9110 §5.3: not a list field)', async () => {
    // A proxy may act on the last header while the service acts on the first: both orders
    // must be refused, never served.
    const goodFirst = await httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: '127.0.0.91',
      headers: { authorization: [`Bearer ${KEY}`, 'Bearer not-a-caller-key'] },
    });
    const goodLast = await httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: '127.0.0.92',
      headers: { authorization: ['Bearer not-a-caller-key', `Bearer ${KEY}`] },
    });
    const bothGood = await httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: '127.0.0.93',
      headers: { authorization: [`Bearer ${KEY}`, `Bearer ${KEY}`] },
    });
    expect401(goodLast);
    expect401(goodFirst);
    expect401(bothGood);
  });
});

describe('TRUSTED_PROXIES: the client address from X-Forwarded-For (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  const PROXY = '127.0.0.101';

  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [{ clientId: 'deals.client', secret: SECRET }] });
    svc = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 } },
      clients: [{ clientId: 'deals.client', environment: 'uat', secret: SECRET }],
      callers: [{ name: 'wide', keys: [KEY], clients: ['*'] }],
      env: { TRUSTED_PROXIES: `${PROXY}/32,::ffff:${PROXY}` },
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  const viaProxy = (forwardedFor: string, key = 'not-a-caller-key', source = PROXY) =>
    httpRequest(`${svc.url}/tokens/deals.client`, {
      localAddress: source,
      headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': forwardedFor },
    });

  it('limits the client the trusted proxy names, not the proxy: other clients behind it are unaffected', async () => {
    const client = '203.0.113.7';
    for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
      // Addresses the client put in front itself cannot dodge the limit: the proxy appends
      // the address it saw, and only that one is believed.
      expect((await viaProxy(`198.51.100.${i}, ${client}`)).status).toBe(401);
    }
    expect((await viaProxy(client)).status).toBe(429);
    expect((await viaProxy(`198.51.100.200, ${client}`)).status).toBe(429);
    // Another client behind the same proxy is still only 401.
    expect((await viaProxy('203.0.113.8')).status).toBe(401);
    expectStatus(await viaProxy('203.0.113.8', KEY), 200);

    const refused = svc.logs
      .audit()
      .filter((l) => l.msg === 'request refused')
      .map((l) => l.source);
    expect(refused.filter((s) => s === client)).toHaveLength(FAILED_AUTH_LIMIT + 2);
    expect(refused).not.toContain(PROXY);
  });

  it('ignores X-Forwarded-For from an address that is not a trusted proxy', async () => {
    const untrusted = '127.0.0.102';
    for (let i = 0; i < FAILED_AUTH_LIMIT; i++) {
      expect((await viaProxy(`203.0.113.${50 + i}`, 'not-a-caller-key', untrusted)).status).toBe(
        401,
      );
    }
    // Every attempt was counted against the untrusted sender itself.
    expect((await viaProxy('203.0.113.99', 'not-a-caller-key', untrusted)).status).toBe(429);
  });
});
