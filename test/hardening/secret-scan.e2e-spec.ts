import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { formUrlEncode } from '@app/upstream';
import { postLarge, startRecordingProxy, type RecordingProxy, expectStatus } from './harness';
import {
  httpRequest,
  type HttpRequestOptions,
  type InProcessService,
  requireTestRedisUrl,
  type SimpleResponse,
  startService,
  type TestClient,
  waitFor,
} from '../support';

/**
 * README "Security and failure behaviour": no secret, caller key or access token ever appears
 * in a log line, an error body or a metric label; Redis holds tokens only encrypted.
 *
 * A broad scenario at debug level with a canary for every secret (client secrets in files
 * and in the environment, caller keys, a wrong key, the encryption key, and every token the
 * IdP issues, recorded by a proxy in front of it), through the error paths, admin calls,
 * reloads (one refused for an inline secret) and rotations (one refused, one adopted). Then
 * every captured log line, every answer received (bodies and headers; a token may appear
 * only in the body of a 200 from GET /tokens), the /metrics text and everything in Redis under
 * the test's prefix are searched for each canary and its encoded forms.
 */
const CANARY = {
  secretPost: 'CANARY-post-secret-Zm9vYmFyMQ',
  secretBasic: 'CANARY-basic:s%e+c r/\u00e9-Mg',
  secretEnv: 'CANARY-env-secret-Mw',
  secretWrong: 'CANARY-wrong-secret-NA',
  secretRot: 'CANARY-rot-secret-v1-NQ',
  rotatedRefused: 'CANARY-rotated-refused-Ng',
  rotatedAdopted: 'CANARY-rotated-adopted-Nw',
  inlineSecret: 'CANARY-inline-secret-OA',
  keyCaller: 'CANARY-caller-key-OQ-aaaaaaaaaaaaaaaaaaaaaa',
  keyAdmin: 'CANARY-admin-key-MTA-bbbbbbbbbbbbbbbbbbbbbb',
  keyBad: 'CANARY-unknown-key-MTE-cccccccccccccccccccc',
};
const ENCRYPTION_KEY = randomBytes(32);

const CLIENTS: TestClient[] = [
  { clientId: 'post.client', environment: 'uat', secret: CANARY.secretPost, scope: 'deals-read' },
  {
    clientId: 'basic.client',
    environment: 'uat',
    secret: CANARY.secretBasic,
    authMethod: 'client_secret_basic',
  },
  { clientId: 'env.client', environment: 'uat', secret: CANARY.secretEnv, via: 'env' },
  { clientId: 'wrong.client', environment: 'uat', secret: CANARY.secretWrong },
  { clientId: 'rot.client', environment: 'uat', secret: CANARY.secretRot },
  { clientId: 'fault.client', environment: 'uat', secret: CANARY.secretPost },
];

/** The forms a secret could leak in: as is, form-encoded, in a Basic header, base64. */
function forms(secret: string, clientId?: string): string[] {
  const out = new Set([
    secret,
    encodeURIComponent(secret),
    formUrlEncode(secret),
    Buffer.from(secret).toString('base64'),
    Buffer.from(secret).toString('base64url'),
  ]);
  if (clientId) {
    out.add(Buffer.from(`${formUrlEncode(clientId)}:${formUrlEncode(secret)}`).toString('base64'));
    out.add(Buffer.from(`${clientId}:${secret}`).toString('base64'));
  }
  return [...out];
}

describe('secret scan: logs, answers, metrics and Redis hold no secret (e2e)', () => {
  let idp: RunningSandbox;
  let proxy: RecordingProxy;
  let svc: InProcessService;
  const answers: {
    what: string;
    res: SimpleResponse | { status: number; headers: object; text: string };
  }[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'post.client', secret: CANARY.secretPost, scopes: ['deals-read'] },
        { clientId: 'basic.client', secret: CANARY.secretBasic },
        { clientId: 'env.client', secret: CANARY.secretEnv },
        { clientId: 'wrong.client', secret: 'the-secret-the-idp-knows' },
        { clientId: 'rot.client', secret: CANARY.secretRot },
        { clientId: 'fault.client', secret: CANARY.secretPost },
      ],
    });
    proxy = await startRecordingProxy(idp.tokenUrl);
    svc = await startService({
      logLevel: 'debug',
      redis: true,
      encryptionKeys: `canary:${ENCRYPTION_KEY.toString('base64')}`,
      environments: { uat: { tokenUrl: proxy.tokenUrl, timeoutMs: 500 } },
      clients: CLIENTS,
      callers: [
        { name: 'caller', keys: [CANARY.keyCaller], clients: ['*'] },
        { name: 'ops', keys: [CANARY.keyAdmin], clients: [], admin: true },
      ],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await proxy?.close();
    await idp?.close();
  });

  const send = async (what: string, path: string, options: HttpRequestOptions = {}) => {
    const res = await httpRequest(svc.url + path, options);
    answers.push({ what, res });
    return res;
  };
  const asCaller = (path: string) => send(`GET ${path}`, path, { key: CANARY.keyCaller });
  const asAdmin = (path: string, method = 'GET', body?: string) =>
    send(`${method} ${path}`, path, {
      key: CANARY.keyAdmin,
      method,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
    });
  const adminClient = async (clientId: string) =>
    ((await asAdmin('/admin/clients')).json().clients as Record<string, unknown>[]).find(
      (c) => c.clientId === clientId,
    )!;

  it('runs the scenario', async () => {
    // Tokens served, each authentication method and secret source.
    for (const id of ['post.client', 'basic.client', 'env.client', 'rot.client']) {
      expectStatus(await asCaller(`/tokens/${id}`), 200);
    }
    // Refused callers and keys in the wrong place.
    expect(
      (
        await send('bad key', '/tokens/post.client', {
          key: CANARY.keyBad,
          localAddress: '127.0.0.201',
        })
      ).status,
    ).toBe(401);
    expect(
      (await send('no key', '/tokens/post.client', { localAddress: '127.0.0.201' })).status,
    ).toBe(401);
    expect(
      (
        await send('duplicate', '/tokens/post.client', {
          localAddress: '127.0.0.201',
          headers: { authorization: [`Bearer ${CANARY.keyBad}`, `Bearer ${CANARY.keyCaller}`] },
        })
      ).status,
    ).toBe(401);
    expect(
      (
        await send('basic', '/tokens/post.client', {
          localAddress: '127.0.0.201',
          headers: {
            authorization: `Basic ${Buffer.from(`x:${CANARY.keyBad}`).toString('base64')}`,
          },
        })
      ).status,
    ).toBe(401);
    for (let i = 0; i < 10; i++)
      await send('flood', '/tokens/post.client', {
        key: CANARY.keyBad,
        localAddress: '127.0.0.202',
      });
    expect(
      (
        await send('limited', '/tokens/post.client', {
          key: CANARY.keyBad,
          localAddress: '127.0.0.202',
        })
      ).status,
    ).toBe(429);
    expect(
      (
        await send('key in query', `/tokens/post.client?access_token=${CANARY.keyCaller}`, {
          key: CANARY.keyCaller,
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await send('key in query, bad URL', `/tokens/%?access_token=${CANARY.keyCaller}`, {
          key: CANARY.keyCaller,
        })
      ).status,
    ).toBe(400);
    expect(
      (await asAdmin('/admin/reload', 'POST', JSON.stringify({ access_token: CANARY.keyAdmin })))
        .status,
    ).toBe(400);
    expectStatus(await asCaller('/tokens/bad%20id'), 400);
    expectStatus(await asCaller('/tokens/post.client?minTtl=999999'), 400);
    expectStatus(await asCaller('/tokens/no-such.client'), 404);
    expectStatus(await send('non-admin', '/admin/clients', { key: CANARY.keyCaller }), 403);
    const big = await postLarge(
      svc.url,
      '/admin/reload',
      { authorization: `Bearer ${CANARY.keyAdmin}`, 'content-type': 'application/json' },
      Buffer.from(JSON.stringify({ k: CANARY.keyAdmin, pad: 'x'.repeat(20_000) })),
    );
    answers.push({ what: '413', res: big });
    expectStatus(big, 413);

    // The IdP refusing, failing and answering garbage.
    expectStatus(await asCaller('/tokens/wrong.client'), 502);
    for (const fault of [
      { mode: 'status_500' },
      { mode: 'html' },
      { mode: 'truncated_json' },
      { mode: 'expires_in', expiresIn: 'abc' },
      { mode: 'wrong_token_type' },
      { mode: 'reset' },
      { mode: 'invalid_scope' },
    ] as const) {
      idp.setFault(fault);
      const res = await asAdmin('/admin/clients/fault.client/refresh', 'POST');
      idp.clearFault();
      expect([502, 503]).toContain(res.status);
      // The 30 s rejection hold would answer the next fault from memory: leave it behind.
      if (res.status === 502) break;
    }

    // Admin calls.
    expectStatus(await asAdmin('/admin/clients'), 200);
    expectStatus(await asAdmin('/admin/clients/post.client/refresh', 'POST'), 200);
    expectStatus(await asAdmin('/admin/clients/wrong.client/refresh', 'POST'), 502);
    expectStatus(await asAdmin('/admin/reload', 'POST'), 200);

    // A rotation the IdP refuses: the working secret stays, the refusal shows.
    writeFileSync(
      svc.secretPath({ clientId: 'post.client', environment: 'uat' }),
      `${CANARY.rotatedRefused}\n`,
    );
    await waitFor(
      'the refused rotation in the admin view',
      async () => {
        const view = await adminClient('post.client');
        return view.secretCandidatePending === true && view.lastRotationError !== undefined;
      },
      8000,
      200,
    );
    expectStatus(await asCaller('/tokens/post.client'), 200);

    // A rotation the IdP accepts (new secret at the IdP first, then on disk).
    idp.setClientSecret('rot.client', CANARY.rotatedAdopted);
    writeFileSync(
      svc.secretPath({ clientId: 'rot.client', environment: 'uat' }),
      `${CANARY.rotatedAdopted}\n`,
    );
    await waitFor(
      'the adopted rotation in the admin view',
      async () => {
        const view = await adminClient('rot.client');
        return view.secretCandidatePending === false && view.lastRotationAt !== undefined;
      },
      8000,
      200,
    );
    expectStatus(await asAdmin('/admin/clients/rot.client/refresh', 'POST'), 200);

    // A reload refused for an inline secret: its value must not be quoted back.
    const good = readFileSync(svc.configPath, 'utf8');
    const inline = {
      environments: { uat: { tokenUrl: proxy.tokenUrl } },
      clients: [{ clientId: 'post.client', environment: 'uat', secret: CANARY.inlineSecret }],
      callers: [{ name: 'ops', keySha256: ['0'.repeat(64)], clients: [], admin: true }],
    };
    writeFileSync(svc.configPath, stringify(inline));
    const refused = await asAdmin('/admin/reload', 'POST');
    writeFileSync(svc.configPath, good);
    expectStatus(refused, 400);
    expect(refused.json().message).toMatch(/secret/);
    expectStatus(await asAdmin('/admin/reload', 'POST'), 200);
    expectStatus(await asCaller('/tokens/env.client'), 200);
    expect(proxy.tokens.size).toBeGreaterThanOrEqual(6);
    // Two rotations, each seen only at a secret-file poll (every 2 s, SECRET_POLL_INTERVAL_MS):
    // the waits' own 8 s budgets are the requirement, not Jest's default 5 s.
  }, 30_000);

  it('finds no canary in logs, answers, metrics or Redis', async () => {
    const metrics = await httpRequest(`${svc.metricsUrl}/metrics`);
    expectStatus(metrics, 200);

    const redis = new Redis(requireTestRedisUrl(), { maxRetriesPerRequest: 1 });
    const stored: string[] = [];
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${svc.keyPrefix}*`, 'COUNT', 500);
        cursor = next;
        for (const key of keys) {
          stored.push(key);
          if ((await redis.type(key)) === 'string') stored.push((await redis.get(key)) ?? '');
        }
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
    expect(stored.some((s) => s.includes(':token'))).toBe(true);

    const secrets: [string, string][] = [
      ...Object.entries(CANARY).flatMap(([name, value]) =>
        forms(value, CLIENTS.find((c) => c.secret === value)?.clientId).map(
          (f) => [name, f] as [string, string],
        ),
      ),
      ['encryptionKey', ENCRYPTION_KEY.toString('base64')],
      ['encryptionKey', ENCRYPTION_KEY.toString('base64url')],
      ['encryptionKey', ENCRYPTION_KEY.toString('hex')],
    ];
    const tokens: [string, string][] = [...proxy.tokens].flatMap((t) => [
      ['token', t] as [string, string],
      ['token signature', t.split('.').at(-1)!] as [string, string],
    ]);
    expect(tokens.length).toBeGreaterThan(0);

    const haystacks: { where: string; text: string; tokensAllowed?: boolean }[] = [
      ...svc.logs.lines.map((line, i) => ({ where: `log line ${i}`, text: line })),
      { where: '/metrics', text: metrics.text },
      ...stored.map((text, i) => ({ where: `redis ${i}`, text })),
      ...answers.map(({ what, res }) => ({
        where: `answer to ${what} (${res.status})`,
        text: `${JSON.stringify(res.headers)}\n${res.text}`,
        // The one place a token may be: the body of a 200 from GET /tokens.
        tokensAllowed: res.status === 200 && what.startsWith('GET /tokens/'),
      })),
    ];
    expect(svc.logs.lines.length).toBeGreaterThan(50);
    expect(svc.logs.lines.some((l) => l.includes('"level":"debug"'))).toBe(true);

    // Positive control: the search does find tokens where they belong (served answers).
    const served = haystacks.filter((h) => h.tokensAllowed);
    expect(
      tokens.filter(([, t]) => served.some((h) => h.text.includes(t))).length,
    ).toBeGreaterThanOrEqual(4);

    const found: string[] = [];
    for (const { where, text, tokensAllowed } of haystacks) {
      for (const [name, needle] of [...secrets, ...(tokensAllowed ? [] : tokens)]) {
        if (text.includes(needle)) found.push(`${name} in ${where}: ${text.slice(0, 300)}`);
      }
    }
    expect(found).toEqual([]);
  });
});
