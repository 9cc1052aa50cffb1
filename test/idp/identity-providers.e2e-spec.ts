import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { ConfigError, ConfigService } from '@app/config';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { CA_FILE_RECHECK_MS } from '@app/upstream';
import { get, post } from '../admin/load';
import {
  clientKeyPair,
  ConnectProxy,
  createTestPki,
  type InProcessService,
  secretPathOf,
  startService,
  type TestCaller,
  type TestClient,
  type TestEnvironment,
  type TestPki,
  sleep,
  waitFor,
} from '../support';

/**
 * Identity providers beyond the shared secret (README "Identity providers"): per-client token
 * parameters, private_key_jwt with key rotation, a private CA, an egress proxy and the refusal
 * of clear-text http. Everything runs over real sockets against the sandbox IdP.
 */
const CALLER_KEY = 'idp-spec-caller-key-0001-aaaaaaaaaaaaaaaaaa';
const ADMIN_KEY = 'idp-spec-admin-key-0002-bbbbbbbbbbbbbbbbbbb';
const CALLERS: TestCaller[] = [
  { name: 'caller', keys: [CALLER_KEY], clients: ['*'] },
  { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
];

const apps: InProcessService[] = [];
async function start(
  environments: Record<string, TestEnvironment>,
  clients: TestClient[],
): Promise<InProcessService> {
  const app = await startService({
    environments,
    clients,
    callers: CALLERS,
    scheduler: false,
    logLevel: 'warn',
  });
  apps.push(app);
  return app;
}
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

const tokenOf = (app: InProcessService, clientId: string) =>
  get(`${app.url}/tokens/${clientId}`, CALLER_KEY);

describe('token request parameters (e2e)', () => {
  let idp: RunningSandbox;
  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [{ clientId: 'params.client', secret: 's-1' }] });
  });
  afterAll(() => idp.close());

  it('sends audience, each resource and the extra parameters; the IdP echoes them into the token', async () => {
    const app = await start({ uat: { tokenUrl: idp.tokenUrl } }, [
      {
        clientId: 'params.client',
        environment: 'uat',
        secret: 's-1',
        fields: {
          audience: 'https://api.example.test',
          resource: ['https://r1.example.test/', 'https://r2.example.test/'],
          extraParams: { organization: 'org_42', tenant_hint: 'emea' },
        },
      },
    ]);
    idp.resetStats();

    const res = await tokenOf(app, 'params.client');

    expect(res.status).toBe(200);
    expect(idp.stats().tokenRequests).toBe(1);
    expect(idp.requests()[0]).toMatchObject({
      clientId: 'params.client',
      authMethod: 'client_secret_post',
      audience: 'https://api.example.test',
      resources: ['https://r1.example.test/', 'https://r2.example.test/'],
      extraParams: { organization: 'org_42', tenant_hint: 'emea' },
    });
    expect(decodeJwt(res.json().access_token as string).aud).toEqual([
      'https://api.example.test',
      'https://r1.example.test/',
      'https://r2.example.test/',
    ]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'a reserved parameter',
      { extraParams: { grant_type: 'password' } },
      'clients[0].extraParams.grant_type: is set by the service (or has its own field) and cannot be overridden',
    ],
    [
      'a credential-carrying name',
      { extraParams: { client_secret_2: 'x' } },
      'clients[0].extraParams.client_secret_2: would carry a credential; credentials are never written in the configuration',
    ],
    [
      'a resource with a fragment',
      { resource: 'https://r.example.test/#x' },
      'clients[0].resource: must be an absolute URI without a fragment (RFC 8707)',
    ],
  ])('refuses %s at start, naming the field', async (_what, fields, problem) => {
    const failure = await start({ uat: { tokenUrl: idp.tokenUrl } }, [
      { clientId: 'params.client', environment: 'uat', secret: 's-1', fields },
    ]).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).problems).toEqual([problem]);
  });
});

describe('private_key_jwt (e2e)', () => {
  let idp: RunningSandbox;
  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [] });
  });
  afterAll(() => idp.close());

  it.each<['RS256' | 'PS256' | 'ES256', 'rsa' | 'ec']>([
    ['RS256', 'rsa'],
    ['PS256', 'rsa'],
    ['ES256', 'ec'],
  ])('vends a token with a %s client assertion the IdP verified', async (alg, kind) => {
    const clientId = `pkjwt-${alg.toLowerCase()}.client`;
    const key = clientKeyPair(kind);
    idp.setClientKeys(clientId, [key.publicPem]);
    const app = await start({ uat: { tokenUrl: idp.tokenUrl } }, [
      {
        clientId,
        environment: 'uat',
        secret: key.privatePem,
        authMethod: 'private_key_jwt',
        fields: { signingAlg: alg, keyId: `${clientId}-k1` },
      },
    ]);
    idp.resetStats();

    const first = await tokenOf(app, clientId);
    const again = await post(`${app.url}/admin/clients/${clientId}/refresh`, ADMIN_KEY);

    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(idp.stats()).toMatchObject({ tokenRequests: 2, issued: 2, rejected: 0 });
    const [one, two] = idp.requests();
    expect(one).toMatchObject({ clientId, authMethod: 'private_key_jwt', status: 200 });
    expect(one.assertionHeader).toEqual({ alg, typ: 'JWT', kid: `${clientId}-k1` });
    const claims = one.assertionClaims as Record<string, number | string>;
    expect(claims).toMatchObject({ iss: clientId, sub: clientId, aud: idp.tokenUrl });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(60);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(two.assertionClaims!.jti).not.toBe(claims.jti);
    expect(one.extraParams).toBeUndefined(); // client_assertion_type and friends are known fields
  });

  it('a key the IdP does not know is refused → 502, with one IdP request', async () => {
    const registered = clientKeyPair();
    const other = clientKeyPair();
    idp.setClientKeys('unknown-key.client', [registered.publicPem]);
    const app = await start({ uat: { tokenUrl: idp.tokenUrl } }, [
      {
        clientId: 'unknown-key.client',
        environment: 'uat',
        secret: other.privatePem,
        authMethod: 'private_key_jwt',
      },
    ]);
    idp.resetStats();

    const res = await tokenOf(app, 'unknown-key.client');

    expect(res.status).toBe(502);
    expect(res.json().error).toBe('upstream_rejected');
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, rejected: 1 });
    expect(res.text).not.toContain('PRIVATE KEY');
  });

  it('a key file that does not hold a key for signingAlg fails the start, naming privateKeyFile', async () => {
    const failure = await start({ uat: { tokenUrl: idp.tokenUrl } }, [
      {
        clientId: 'wrong-type.client',
        environment: 'uat',
        secret: clientKeyPair('rsa').privatePem,
        authMethod: 'private_key_jwt',
        fields: { signingAlg: 'ES256' },
      },
    ]).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ConfigError);
    const [problem] = (failure as ConfigError).problems;
    expect(problem).toMatch(/^clients\[0\]\.privateKeyFile: .* holds a rsa key; ES256 needs ec$/);
    expect((failure as ConfigError).message).not.toContain('PRIVATE KEY');
  });

  it('rotates the key file without a restart: a key the IdP refuses is not adopted, the next one is', async () => {
    const clientId = 'rotating-key.client';
    const keyA = clientKeyPair();
    const keyB = clientKeyPair();
    const wrong = clientKeyPair();
    idp.setClientKeys(clientId, [keyA.publicPem]);
    const client: TestClient = {
      clientId,
      environment: 'uat',
      secret: keyA.privatePem,
      authMethod: 'private_key_jwt',
    };
    const app = await startService({
      environments: { uat: { tokenUrl: idp.tokenUrl } },
      clients: [client],
      callers: CALLERS,
      logLevel: 'warn',
    });
    apps.push(app);
    const keyFile = secretPathOf(app.dir, client);
    const view = async (): Promise<Record<string, unknown>> => {
      const res = await get(`${app.url}/admin/clients`, ADMIN_KEY);
      return (res.json().clients as Record<string, unknown>[]).find(
        (c) => c.clientId === clientId,
      )!;
    };
    expect((await tokenOf(app, clientId)).status).toBe(200);

    // A key the IdP does not know: tried, refused, the working key stays.
    writeFileSync(keyFile, wrong.privatePem);
    const refused = await waitFor(
      'the wrong key to be tried',
      async () => ((await view()).lastRotationError ? await view() : undefined),
      10_000,
    );
    expect(refused).toMatchObject({
      secretCandidatePending: true,
      lastRotationError: { code: 'upstream_rejected' },
    });
    idp.resetStats();
    expect((await post(`${app.url}/admin/clients/${clientId}/refresh`, ADMIN_KEY)).status).toBe(
      200,
    );
    expect(idp.requests().map((r) => r.status)).toEqual([200]); // signed by key A

    // The IdP moves to key B only; the file follows and B is adopted without a restart.
    idp.setClientKeys(clientId, [keyB.publicPem]);
    writeFileSync(keyFile, keyB.privatePem);
    const adopted = await waitFor(
      'key B to be adopted',
      async () => {
        const v = await view();
        return v.secretCandidatePending === false && v.lastRotationAt ? v : undefined;
      },
      10_000,
    );
    expect(adopted.lastRotationAt).toEqual(expect.any(String));
    idp.resetStats();
    expect((await post(`${app.url}/admin/clients/${clientId}/refresh`, ADMIN_KEY)).status).toBe(
      200,
    );
    expect(idp.requests().map((r) => r.status)).toEqual([200]); // only B verifies now
    // Two key files, each seen only at a secret-file poll (every 2 s, SECRET_POLL_INTERVAL_MS):
    // the waits' own 10 s budgets are the requirement, not Jest's default 5 s.
  }, 30_000);
});

describe('egress and trust (e2e)', () => {
  let pki: TestPki;
  let idp: RunningSandbox;
  let proxy: ConnectProxy;
  const proxyEnv = [
    'HTTPS_PROXY',
    'https_proxy',
    'HTTP_PROXY',
    'http_proxy',
    'NO_PROXY',
    'no_proxy',
  ];
  const savedEnv = new Map<string, string | undefined>();

  beforeAll(async () => {
    pki = createTestPki();
    idp = await startIdentitySandbox({
      clients: [{ clientId: 'tls.client', secret: 'tls-secret-1' }],
      tls: { key: pki.serverKey, cert: pki.serverCert },
    });
    proxy = await ConnectProxy.start();
    for (const name of proxyEnv) savedEnv.set(name, process.env[name]);
  });
  afterAll(async () => {
    await idp.close();
    await proxy.close();
    pki.dispose();
  });
  beforeEach(() => {
    for (const name of proxyEnv) delete process.env[name];
    proxy.tunnels.length = 0;
    idp.resetStats();
  });
  afterEach(() => {
    for (const [name, value] of savedEnv) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  const tlsClient: TestClient = {
    clientId: 'tls.client',
    environment: 'uat',
    secret: 'tls-secret-1',
  };

  it('an https IdP under a private CA works with caFile', async () => {
    expect(idp.tokenUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/connect\/token$/);
    const app = await start({ uat: { tokenUrl: idp.tokenUrl, caFile: pki.caFile } }, [tlsClient]);

    expect((await tokenOf(app, 'tls.client')).status).toBe(200);
    expect(idp.stats().issued).toBe(1);
  });

  it('trusts a caFile replaced on disk from the next IdP call, without a restart', async () => {
    const other = createTestPki(); // another CA: the IdP's certificate is not signed by it
    try {
      const caFile = join(other.dir, 'bundle.pem');
      writeFileSync(caFile, readFileSync(other.caFile));
      const app = await start({ uat: { tokenUrl: idp.tokenUrl, caFile, timeoutMs: 1000 } }, [
        tlsClient,
      ]);
      const refused = await tokenOf(app, 'tls.client');
      expect([refused.status, refused.json().error]).toEqual([503, 'upstream_unavailable']);
      expect(idp.stats().tokenRequests).toBe(0);

      // The operator replaces the bundle (written beside it, renamed over it).
      writeFileSync(`${caFile}.new`, readFileSync(pki.caFile));
      renameSync(`${caFile}.new`, caFile);
      await sleep(CA_FILE_RECHECK_MS + 200);

      expect((await tokenOf(app, 'tls.client')).status).toBe(200);
      expect(idp.stats().issued).toBe(1);
    } finally {
      other.dispose();
    }
  });

  it('the same IdP is refused without caFile → 503, and never sees the secret', async () => {
    const app = await start({ uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 } }, [tlsClient]);

    const res = await tokenOf(app, 'tls.client');

    expect(res.status).toBe(503);
    expect(res.json().error).toBe('upstream_unavailable');
    expect(idp.stats().tokenRequests).toBe(0);
  });

  it('goes through the HTTPS_PROXY with a CONNECT tunnel', async () => {
    process.env.HTTPS_PROXY = proxy.url;
    const app = await start({ uat: { tokenUrl: idp.tokenUrl, caFile: pki.caFile } }, [tlsClient]);

    expect((await tokenOf(app, 'tls.client')).status).toBe(200);
    expect(proxy.tunnels).toEqual([new URL(idp.url).host]);
    expect(idp.stats().issued).toBe(1);
  });

  it('bypasses the proxy for hosts in NO_PROXY', async () => {
    process.env.HTTPS_PROXY = proxy.url;
    process.env.NO_PROXY = 'localhost,127.0.0.1';
    const app = await start({ uat: { tokenUrl: idp.tokenUrl, caFile: pki.caFile } }, [tlsClient]);

    expect((await tokenOf(app, 'tls.client')).status).toBe(200);
    expect(proxy.tunnels).toEqual([]);
    expect(idp.stats().issued).toBe(1);
  });

  it.each([
    ['http://idp.example.test/connect/token', true],
    ['http://10.1.2.3:8080/connect/token', true],
    ['http://127.0.0.1:1/connect/token', false],
    ['http://localhost:1/connect/token', false],
    ['http://[::ffff:127.0.0.1]:1/connect/token', false],
    ['http://localhost.:1/connect/token', true],
  ])('%s without allowInsecureHttp: refused at start = %p', async (tokenUrl, refused) => {
    const outcome = await start({ uat: { tokenUrl } }, [tlsClient]).then(
      () => 'started',
      (e: unknown) => e,
    );

    if (!refused) return expect(outcome).toBe('started');
    expect(outcome).toBeInstanceOf(ConfigError);
    expect((outcome as ConfigError).problems).toEqual([
      'environments.uat.tokenUrl: http:// is accepted only for loopback hosts; use https:// or set allowInsecureHttp: true',
    ]);
  });

  it('allowInsecureHttp: true accepts a non-loopback http:// token URL', async () => {
    const app = await start(
      { uat: { tokenUrl: 'http://idp.example.test/connect/token', allowInsecureHttp: true } },
      [tlsClient],
    );

    expect(app.app.get(ConfigService).service.environments.get('uat')).toMatchObject({
      tokenUrl: 'http://idp.example.test/connect/token',
      allowInsecureHttp: true,
    });
  });
});
