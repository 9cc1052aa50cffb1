import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '@app/config';
import {
  startIdentitySandbox,
  type RunningSandbox,
  type SandboxOptions,
} from '@app/identity-sandbox';
import { IdpDiscovery } from '@app/upstream';
import { get, post } from '../admin/load';
import {
  clientKeyPair,
  closeServer,
  freePort,
  type InProcessService,
  startService,
  type TestCaller,
  type TestClient,
  type TestEnvironment,
  waitFor,
  writeServiceConfig,
} from '../support';

/**
 * Discovery (README "Identity providers"): an environment names its IdP's `issuer` and the
 * token endpoint and supported methods come from the IdP's metadata, over real sockets.
 */
const CALLER_KEY = 'discovery-caller-key-0001-aaaaaaaaaaaaaaaaa';
const CALLERS: TestCaller[] = [{ name: 'caller', keys: [CALLER_KEY], clients: ['*'] }];
const CLIENT: TestClient = { clientId: 'disco.client', environment: 'uat', secret: 'disco-1' };

const idps: RunningSandbox[] = [];
const apps: InProcessService[] = [];
async function sandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const idp = await startIdentitySandbox({
    clients: [{ clientId: CLIENT.clientId, secret: CLIENT.secret }],
    ...options,
  });
  idps.push(idp);
  return idp;
}
async function start(
  environments: Record<string, TestEnvironment>,
  clients: TestClient[] = [CLIENT],
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
  for (const idp of idps.splice(0)) await idp.close();
});

const tokenOf = (app: InProcessService, clientId = CLIENT.clientId) =>
  get(`${app.url}/tokens/${clientId}`, CALLER_KEY);

describe('discovery (e2e)', () => {
  it('finds the token endpoint from <issuer>/.well-known/openid-configuration', async () => {
    const idp = await sandbox();
    const app = await start({ uat: { issuer: idp.url } });

    const res = await tokenOf(app);

    expect(res.status).toBe(200);
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 1 });
    expect(app.app.get(IdpDiscovery).discovered({ name: 'uat', issuer: idp.url } as never)).toEqual(
      expect.objectContaining({ tokenEndpoint: idp.tokenUrl }),
    );
  });

  it("falls back to RFC 8414's oauth-authorization-server document", async () => {
    const idp = await sandbox({ openidConfiguration: false });
    const app = await start({ uat: { issuer: idp.url } });

    expect((await tokenOf(app)).status).toBe(200);
    expect(idp.stats().issued).toBe(1);
  });

  it('signs a private_key_jwt assertion for the discovered token endpoint', async () => {
    const idp = await sandbox();
    const key = clientKeyPair('ec');
    idp.setClientKeys('disco-jwt.client', [key.publicPem]);
    const app = await start({ uat: { issuer: idp.url } }, [
      {
        clientId: 'disco-jwt.client',
        environment: 'uat',
        secret: key.privatePem,
        authMethod: 'private_key_jwt',
        fields: { signingAlg: 'ES256' },
      },
    ]);

    expect((await tokenOf(app, 'disco-jwt.client')).status).toBe(200);
    expect(idp.requests()[0].assertionClaims).toMatchObject({ aud: idp.tokenUrl });
  });

  it('an issuer mismatch fails the start, naming the field', async () => {
    const idp = await sandbox({ issuer: 'https://impostor.example.test' });

    const failure = await start({ uat: { issuer: idp.url } }).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).problems).toEqual([
      `environments.uat.issuer: the discovery document names issuer "https://impostor.example.test", not "${idp.url}"`,
    ]);
    expect(idp.stats().tokenRequests).toBe(0);
  });

  it('a client whose authMethod the IdP does not list fails the start, naming the field', async () => {
    const idp = await sandbox({ authMethods: ['client_secret_basic', 'private_key_jwt'] });

    const failure = await start({ uat: { issuer: idp.url } }).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).problems).toEqual([
      'clients[0].authMethod: client_secret_post is not among the token_endpoint_auth_methods_supported of environment "uat" (client_secret_basic, private_key_jwt)',
    ]);
  });

  it('a reload whose client uses a method the IdP does not list is refused, naming the field; the running client keeps serving', async () => {
    const idp = await sandbox({ authMethods: ['client_secret_basic', 'private_key_jwt'] });
    const admin = 'discovery-admin-key-0003-ccccccccccccccccc';
    const options = {
      environments: { uat: { issuer: idp.url } },
      clients: [{ ...CLIENT, authMethod: 'client_secret_basic' as const }],
      callers: [...CALLERS, { name: 'admin', keys: [admin], clients: [], admin: true }],
    };
    const app = await startService({ ...options, scheduler: false, logLevel: 'warn' });
    apps.push(app);
    const first = await tokenOf(app);
    expect(first.status).toBe(200);

    writeServiceConfig(app.configPath, {
      ...options,
      clients: [{ ...CLIENT, authMethod: 'client_secret_post' as const }],
    });
    const refused = await post(`${app.url}/admin/reload`, admin);

    expect(refused.status).toBe(400);
    expect(refused.json()).toEqual({
      error: 'invalid_request',
      message: expect.stringContaining(
        'clients[0].authMethod: client_secret_post is not among the token_endpoint_auth_methods_supported of environment "uat" (client_secret_basic, private_key_jwt)',
      ) as unknown,
    });
    const after = await tokenOf(app);
    expect([after.status, after.json().access_token]).toEqual([200, first.json().access_token]);
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 1 });
  });

  it('does not follow a redirect of the metadata endpoints: 503, never the redirect target', async () => {
    // The issuer answers every well-known location with a redirect to an IdP whose document
    // names that same issuer: following it would make the IdP's token endpoint ours.
    const asked: string[] = [];
    const redirector = createHttpServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(302, { location: `${target}${req.url ?? '/'}` }).end();
    });
    let target = '';
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    try {
      const issuer = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
      const idp = await sandbox({ issuer });
      target = idp.url;
      const app = await start({ uat: { issuer, timeoutMs: 1000 } });

      const res = await tokenOf(app);

      expect(res.status).toBe(503);
      expect(res.json().error).toBe('upstream_unavailable');
      expect(asked.slice(0, 2)).toEqual([
        '/.well-known/openid-configuration',
        '/.well-known/oauth-authorization-server',
      ]);
      expect(app.app.get(IdpDiscovery).discovered({ name: 'uat', issuer } as never)).toBe(
        undefined,
      );
      expect(idp.stats().tokenRequests).toBe(0);
    } finally {
      await closeServer(redirector);
    }
  });

  it.each([
    ['an http:// token_endpoint beyond loopback', 'http://idp.example.test/connect/token', false],
    ['the same with allowInsecureHttp: true', 'http://idp.example.test/connect/token', true],
  ])('a discovered token endpoint: %s', async (_name, tokenEndpoint, allowInsecureHttp) => {
    const metadata = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, token_endpoint: tokenEndpoint }));
    });
    await new Promise<void>((resolve) => metadata.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
    try {
      const outcome = await start({ uat: { issuer, allowInsecureHttp } }, [
        { ...CLIENT, authMethod: 'client_secret_basic' },
      ]).then(
        (app) => app.app.get(IdpDiscovery).discovered({ name: 'uat', issuer } as never),
        (e: unknown) => e,
      );

      if (allowInsecureHttp) {
        expect(outcome).toMatchObject({ tokenEndpoint, authMethods: ['client_secret_basic'] });
        return;
      }
      expect(outcome).toBeInstanceOf(ConfigError);
      expect((outcome as ConfigError).problems).toEqual([
        'environments.uat.issuer: the discovered token_endpoint is http:// beyond loopback; set allowInsecureHttp: true to accept it',
      ]);
    } finally {
      await closeServer(metadata);
    }
  });

  it('a reload that turns allowInsecureHttp off stops an http:// token endpoint discovered while it was on', async () => {
    // The discovered endpoint is beyond loopback; HTTP_PROXY (honoured by the IdP pools, with
    // loopback excluded) leads its requests to a recorder playing that IdP.
    const tokenEndpoint = 'http://idp.example.test/connect/token';
    const proxied: string[] = [];
    const proxy = createHttpServer((req, res) => {
      proxied.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(
        JSON.stringify({
          access_token: 'proxied-token-0001',
          token_type: 'Bearer',
          expires_in: 3600,
        }),
      );
    });
    const metadata = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, token_endpoint: tokenEndpoint }));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => metadata.listen(0, '127.0.0.1', resolve));
    const issuer = `http://127.0.0.1:${(metadata.address() as AddressInfo).port}`;
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    process.env.NO_PROXY = '127.0.0.1,localhost';
    const admin = 'discovery-admin-key-0002-bbbbbbbbbbbbbbbbb';
    const options = {
      environments: { uat: { issuer, allowInsecureHttp: true } },
      clients: ['first.client', 'second.client'].map((clientId) => ({
        clientId,
        environment: 'uat',
        secret: `${clientId}-secret`,
        authMethod: 'client_secret_basic' as const,
      })),
      callers: [...CALLERS, { name: 'admin', keys: [admin], clients: [], admin: true }],
    };
    try {
      const app = await startService({ ...options, scheduler: false, logLevel: 'warn' });
      apps.push(app);
      expect((await tokenOf(app, 'first.client')).status).toBe(200);
      expect(proxied).toEqual([`POST ${tokenEndpoint}`]);

      writeServiceConfig(app.configPath, {
        ...options,
        environments: { uat: { issuer, allowInsecureHttp: false } },
      });
      expect((await post(`${app.url}/admin/reload`, admin)).status).toBe(200);
      const res = await tokenOf(app, 'second.client');

      expect(res.status).toBe(503);
      expect(res.json().error).toBe('upstream_unavailable');
      expect(proxied).toEqual([`POST ${tokenEndpoint}`]);
      await expect(app.app.get(IdpDiscovery).tokenEndpointOf('uat')).rejects.toThrow(
        'the discovered token endpoint of environment "uat" is http:// beyond loopback and allowInsecureHttp is off',
      );
    } finally {
      Object.assign(process.env, saved);
      for (const [name, value] of Object.entries(saved))
        if (value === undefined) delete process.env[name];
      await closeServer(metadata);
      await closeServer(proxy);
    }
  });

  it('an IdP down at start: the service starts, answers 503, and recovers without a restart', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const app = await start({ uat: { issuer, timeoutMs: 1000 } });

    const down = await tokenOf(app);
    expect(down.status).toBe(503);
    expect(down.json().error).toBe('upstream_unavailable');

    const idp = await sandbox({ port });
    // The background retry finds it with no caller asking.
    const found = await waitFor(
      'discovery to succeed in the background',
      () => Promise.resolve(app.app.get(IdpDiscovery).discovered({ name: 'uat', issuer } as never)),
      10_000,
    );
    expect(found.tokenEndpoint).toBe(`${issuer}/connect/token`);
    expect((await tokenOf(app)).status).toBe(200);
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 1 });
    // The background discovery wait's own 10 s budget is the requirement, not Jest's default 5 s.
  }, 30_000);
});
