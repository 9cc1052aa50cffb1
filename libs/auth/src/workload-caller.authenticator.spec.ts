import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { stringify } from 'yaml';

import { ConfigService, loadRuntimeSettings, parseServiceConfig } from '@app/config';
import { CallerIssuerUnavailableError } from '@app/errors';
import { JWKS_MAX_AGE_MS, MAX_KEY_DOCUMENT_BYTES } from './issuer-key-set';
import { VerifiedTokenCache } from './verified-token.cache';
import {
  WorkloadCallerAuthenticator,
  type WorkloadAuthentication,
} from './workload-caller.authenticator';
import { TestClock } from '../../../test/support/clock';

const ISSUER = 'https://cluster.example';
const NOW = Date.UTC(2026, 11, 1, 0, 0, 0);

describe('VerifiedTokenCache', () => {
  it('forgets an entry at its expiry and the oldest entry past its capacity', () => {
    const sut = new VerifiedTokenCache<string>(2);
    sut.set('a', 'A', 1_000);
    sut.set('b', 'B', 5_000);

    expect(sut.get('a', 999)).toBe('A');
    expect(sut.get('a', 1_000)).toBeUndefined();
    sut.set('c', 'C', 5_000);
    sut.set('d', 'D', 5_000);
    expect(sut.size).toBe(2);
    expect(sut.get('b', 0)).toBeUndefined();
    expect([sut.get('c', 0), sut.get('d', 0)]).toEqual(['C', 'D']);
  });
});

describe('WorkloadCallerAuthenticator', () => {
  let server: Server;
  let jwksUri: string;
  let jwks: { keys: JWK[] };
  let jwksUp = true;
  /** Bytes of padding sent (streamed, no Content-Length) inside the JWKS document. */
  let jwksPadding = 0;
  let jwksFetches = 0;
  /** What `<issuer>/.well-known/openid-configuration` answers. */
  let discoveryDocument: object = {};
  let authorizations: (string | undefined)[] = [];
  let privateKey: CryptoKey;
  let clock: TestClock;
  let config: ConfigService;
  let sut: WorkloadCallerAuthenticator;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }] };
    server = createServer((req, res) => {
      if (req.url?.endsWith('/.well-known/openid-configuration')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify(discoveryDocument));
      }
      jwksFetches++;
      authorizations.push(req.headers.authorization);
      res.writeHead(jwksUp ? 200 : 503, { 'content-type': 'application/json' });
      if (jwksPadding === 0) return void res.end(JSON.stringify(jwksUp ? jwks : { error: 'down' }));
      // A valid JWKS (its real key, then a long unknown member) in 16 KiB chunks.
      res.write(`{"keys":${JSON.stringify(jwks.keys)},"padding":"`);
      for (let sent = 0; sent < jwksPadding; sent += 16_384) res.write('x'.repeat(16_384));
      res.end('"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const configFor = (
    callers: object[],
    audience = 'token-vendor',
    bearerTokenFile?: string,
  ): ConfigService =>
    new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
      service: parseServiceConfig(
        stringify({
          environments: { uat: { tokenUrl: 'https://idp.example/connect/token' } },
          clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
          callerIssuers: [{ name: 'cluster', issuer: ISSUER, jwksUri, audience, bearerTokenFile }],
          callers,
        }),
        'test.yaml',
      ),
      secrets: new Map(),
    });
  const deals = {
    name: 'deals-service',
    kubernetes: { issuer: 'cluster', namespace: 'deals', serviceAccount: 'deals-api' },
    clients: ['a.client'],
  };

  beforeEach(() => {
    jwksUp = true;
    jwksPadding = 0;
    jwksFetches = 0;
    authorizations = [];
    clock = new TestClock({ start: NOW });
    config = configFor([deals]);
    sut = new WorkloadCallerAuthenticator(config, clock);
  });

  /** An issuer found by discovery (no jwksUri), served by the test server under /cluster. */
  const discoveringConfig = (issuer: string): ConfigService =>
    new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
      service: parseServiceConfig(
        stringify({
          environments: { uat: { tokenUrl: 'https://idp.example/connect/token' } },
          clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
          callerIssuers: [{ name: 'cluster', issuer, audience: 'token-vendor' }],
          callers: [deals],
        }),
        'test.yaml',
      ),
      secrets: new Map(),
    });

  const mint = (
    expiresInSeconds = 600,
    sa = 'deals-api',
    issuer = ISSUER,
    signer: { key: CryptoKey; kid: string } = { key: privateKey, kid: 'k1' },
  ): Promise<string> =>
    new SignJWT({
      'kubernetes.io': {
        namespace: 'deals',
        serviceaccount: { name: sa, uid: 'sa-uid' },
        pod: { name: 'deals-api-1', uid: 'pod-uid' },
      },
    })
      .setProtectedHeader({ alg: 'ES256', kid: signer.kid })
      .setIssuer(issuer)
      .setAudience('token-vendor')
      .setSubject(`system:serviceaccount:deals:${sa}`)
      .setIssuedAt(Math.floor(NOW / 1000))
      .setExpirationTime(Math.floor(NOW / 1000) + expiresInSeconds)
      .sign(signer.key);

  const nameOf = (r: WorkloadAuthentication): string =>
    'caller' in r ? r.caller.name : `refused:${r.refused}`;

  it('verifies once, then answers synchronously from the cache until the token expires', async () => {
    const token = await mint(600);

    const first = sut.authenticate(token);
    expect(first).toBeInstanceOf(Promise);
    const verified = await first;
    expect(nameOf(verified)).toBe('deals-service');
    expect('caller' in verified && verified.caller.presented).toEqual({
      workload: 'deals/deals-api',
      pod: 'deals-api-1',
      podUid: 'pod-uid',
    });

    const hit = sut.authenticate(token);
    expect(hit).not.toBeInstanceOf(Promise);
    expect(nameOf(hit as WorkloadAuthentication)).toBe('deals-service');

    // Past exp (+ the leeway): the cache no longer answers, and verification refuses it.
    await clock.advance(600_000 + 31_000);
    expect(nameOf(await sut.authenticate(token))).toBe('refused:expired');
    expect(jwksFetches).toBe(1);
  });

  it('matches the callers again after a reload: a removed caller is refused at once', async () => {
    const token = await mint();
    expect(nameOf(await sut.authenticate(token))).toBe('deals-service');

    const reloaded = configFor([{ name: 'someone-else', keySha256: 'a'.repeat(64) }]);
    config.replace(reloaded.current);

    const after = sut.authenticate(token);
    expect(after).not.toBeInstanceOf(Promise); // still verified: only the match changed
    expect(after).toEqual({ refused: 'no_caller', workload: 'deals/deals-api' });
  });

  it('forgets verified tokens when a reload changes an issuer (another audience)', async () => {
    const token = await mint();
    expect(nameOf(await sut.authenticate(token))).toBe('deals-service');

    config.replace(configFor([deals], 'another-audience').current);

    expect(nameOf(await sut.authenticate(token))).toBe('refused:audience');
  });

  it('fetches the JWKS without credentials, or with the current token of bearerTokenFile', async () => {
    expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');
    expect(authorizations).toEqual([undefined]);

    const dir = mkdtempSync(join(tmpdir(), 'jwks-bearer-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, 'first-projected-token\n');
      config = configFor([deals], 'token-vendor', file);
      sut = new WorkloadCallerAuthenticator(config, clock);
      expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');
      // The kubelet rotates the file: the next fetch (forced here) sends the new token.
      writeFileSync(file, 'second-projected-token\n');
      const realNow = Date.now;
      Date.now = () => realNow() + 11 * 60_000;
      try {
        expect(nameOf(await sut.authenticate(await mint(900)))).toBe('deals-service');
      } finally {
        Date.now = realNow;
      }
      expect(authorizations).toEqual([
        undefined,
        'Bearer first-projected-token',
        'Bearer second-projected-token',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a reload that names another bearerTokenFile fetches the JWKS with that file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jwks-bearer-'));
    try {
      const [first, second] = [join(dir, 'first'), join(dir, 'second')];
      writeFileSync(first, 'token-of-the-first-file\n');
      writeFileSync(second, 'token-of-the-second-file\n');
      config = configFor([deals], 'token-vendor', first);
      sut = new WorkloadCallerAuthenticator(config, clock);
      expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');

      config.replace(configFor([deals], 'token-vendor', second).current);
      rmSync(first);

      expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');
      expect(authorizations).toEqual([
        'Bearer token-of-the-first-file',
        'Bearer token-of-the-second-file',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['names the same issuer and an http(s) jwks_uri: its keys are used', 'same', 'loopback'],
    ['names another issuer: its jwks_uri is never fetched (503)', 'other', 'loopback'],
    ['names a plain http:// jwks_uri beyond loopback: never fetched (503)', 'same', 'other'],
  ])('discovery from the issuer: a document that %s', async (_name, which, where) => {
    const issuer = `${new URL(jwksUri).origin}/cluster`;
    discoveryDocument = {
      issuer: which === 'same' ? issuer : 'https://impostor.example',
      // Not loopback (a TEST-NET-1 address): plain http there is refused before any fetch.
      jwks_uri: where === 'loopback' ? jwksUri : 'http://192.0.2.10/jwks',
    };
    sut = new WorkloadCallerAuthenticator(discoveringConfig(issuer), clock);

    const outcome = await Promise.resolve(sut.authenticate(await mint(600, 'deals-api', issuer)))
      .then(nameOf)
      .catch((e: unknown) => e);

    if (which === 'same' && where === 'loopback') {
      expect(outcome).toBe('deals-service');
      expect(jwksFetches).toBe(1);
    } else {
      expect(outcome).toBeInstanceOf(CallerIssuerUnavailableError);
      expect(jwksFetches).toBe(0);
    }
  });

  it.each([
    ['a jwks_uri discovery names on another origin gets no token', false],
    ['the configured jwksUri gets it, on whatever origin', true],
  ])('bearerTokenFile goes to the issuer and jwksUri origins only: %s', async (_n, configured) => {
    // Two loopback origins, each recording the Authorization header of every request.
    const seen: [string, string | undefined][] = [];
    const recorder = (host: string) =>
      createServer((req, res) => {
        seen.push([`${host}${req.url}`, req.headers.authorization]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(req.url === '/.well-known/openid-configuration' ? document : jwks));
      });
    const [issuerHost, keysHost] = [recorder('issuer'), recorder('keys')];
    await new Promise<void>((r) => issuerHost.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => keysHost.listen(0, '127.0.0.2', r));
    const issuer = `http://127.0.0.1:${(issuerHost.address() as AddressInfo).port}`;
    const keysUri = `http://127.0.0.2:${(keysHost.address() as AddressInfo).port}/jwks`;
    const document = { issuer, jwks_uri: keysUri };
    const dir = mkdtempSync(join(tmpdir(), 'jwks-bearer-'));
    try {
      const file = join(dir, 'token');
      writeFileSync(file, 'projected-token\n');
      const issuerEntry = {
        name: 'cluster',
        issuer,
        audience: 'token-vendor',
        bearerTokenFile: file,
        ...(configured ? { jwksUri: keysUri } : {}),
      };
      sut = new WorkloadCallerAuthenticator(
        new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
          service: parseServiceConfig(
            stringify({
              environments: { uat: { tokenUrl: 'https://idp.example/connect/token' } },
              clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
              callerIssuers: [issuerEntry],
              callers: [deals],
            }),
            'test.yaml',
          ),
          secrets: new Map(),
        }),
        clock,
      );

      expect(nameOf(await sut.authenticate(await mint(600, 'deals-api', issuer)))).toBe(
        'deals-service',
      );
      expect(seen).toEqual(
        configured
          ? [['keys/jwks', 'Bearer projected-token']]
          : [
              ['issuer/.well-known/openid-configuration', 'Bearer projected-token'],
              ['keys/jwks', undefined],
            ],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await new Promise<void>((r) => issuerHost.close(() => r()));
      await new Promise<void>((r) => keysHost.close(() => r()));
    }
  });

  it('fetches the JWKS through HTTP_PROXY like the IdP calls (the same undici pools)', async () => {
    const proxied: string[] = [];
    const proxy = createServer((req, res) => {
      proxied.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    delete process.env.NO_PROXY;
    try {
      sut = new WorkloadCallerAuthenticator(config, clock);
      expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');

      expect(proxied).toEqual([`GET ${jwksUri}`]);
      expect(jwksFetches).toBe(0);
    } finally {
      await sut.onApplicationShutdown();
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  it('answers 503 (CallerIssuerUnavailableError) when no key was ever fetched', async () => {
    jwksUp = false;
    await expect(Promise.resolve(sut.authenticate(await mint()))).rejects.toBeInstanceOf(
      CallerIssuerUnavailableError,
    );
  });

  it('refuses a JWKS larger than MAX_KEY_DOCUMENT_BYTES: a failed fetch (503), never read whole', async () => {
    jwksPadding = MAX_KEY_DOCUMENT_BYTES;
    await expect(Promise.resolve(sut.authenticate(await mint()))).rejects.toBeInstanceOf(
      CallerIssuerUnavailableError,
    );
    expect(jwksFetches).toBe(1);

    // The same keys with a little padding are fine: the limit, not the padding, refused it.
    jwksPadding = 16_384;
    await clock.advance(6_000); // past JWKS_RETRY_AFTER_FAILURE_MS
    expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');
  });

  it('keeps the cached keys when a refetch after their maximum age fails', async () => {
    expect(nameOf(await sut.authenticate(await mint()))).toBe('deals-service');
    jwksUp = false;
    // jose's cache age runs on the system clock: make the keys stale by faking Date.now.
    const realNow = Date.now;
    Date.now = () => realNow() + 11 * 60_000;
    try {
      expect(nameOf(await sut.authenticate(await mint(900)))).toBe('deals-service');
      expect(jwksFetches).toBe(2); // the refetch was tried, and failed
    } finally {
      Date.now = realNow;
    }
  });
  describe('a key the issuer withdraws (README "Callers without keys")', () => {
    let original: { keys: JWK[] };
    let k2: { key: CryptoKey; kid: string };
    let k2Jwk: JWK;

    beforeAll(async () => {
      const pair = await generateKeyPair('ES256');
      k2 = { key: pair.privateKey, kid: 'k2' };
      k2Jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k2', alg: 'ES256' };
    });
    beforeEach(() => {
      original = jwks;
    });
    afterEach(() => {
      jwks = original;
    });

    /** A token verified (one JWKS fetch), then answered synchronously from the cache. */
    const verifiedAndCached = async (): Promise<string> => {
      const token = await mint(3_600);
      expect(nameOf(await sut.authenticate(token))).toBe('deals-service');
      const hit = sut.authenticate(token);
      expect(hit).not.toBeInstanceOf(Promise);
      expect(nameOf(hit as WorkloadAuthentication)).toBe('deals-service');
      expect(jwksFetches).toBe(1);
      return token;
    };

    it('stops vouching for cached tokens once the periodic check refetches keys JWKS_MAX_AGE_MS old', async () => {
      const token = await verifiedAndCached();
      jwks = { keys: [k2Jwk] }; // k1 withdrawn, k2 published

      // Younger than the maximum age: the check fetches nothing, the cache still answers.
      await clock.advance(JWKS_MAX_AGE_MS - 1);
      await sut.refreshStaleIssuerKeys();
      expect(jwksFetches).toBe(1);
      expect(sut.authenticate(token)).not.toBeInstanceOf(Promise);

      await clock.advance(1);
      await sut.refreshStaleIssuerKeys();
      expect(jwksFetches).toBe(2);
      const again = sut.authenticate(token);
      expect(again).toBeInstanceOf(Promise); // verified again, against the new keys
      expect(nameOf(await again)).toBe('refused:unknown_key');
      // Refused again on the next request (nothing of it was kept), and k2's tokens are served.
      expect(nameOf(await sut.authenticate(token))).toBe('refused:unknown_key');
      expect(nameOf(await sut.authenticate(await mint(600, 'deals-api', ISSUER, k2)))).toBe(
        'deals-service',
      );
      expect(jwksFetches).toBe(2);
    });

    it('stops vouching for cached tokens when a verification refetched the JWKS (an unknown kid)', async () => {
      const token = await verifiedAndCached();
      jwks = { keys: [k2Jwk] };
      await clock.advance(6_000); // past the refetch cooldown (jose measures it on Date.now)
      const realNow = Date.now;
      Date.now = () => realNow() + 6_000;
      try {
        expect(nameOf(await sut.authenticate(await mint(600, 'deals-api', ISSUER, k2)))).toBe(
          'deals-service',
        );
        expect(jwksFetches).toBe(2);
        expect(nameOf(await sut.authenticate(token))).toBe('refused:unknown_key');
      } finally {
        Date.now = realNow;
      }
    });

    it('keeps cached tokens whose key the refetched JWKS still holds, and when the refetch fails', async () => {
      const token = await verifiedAndCached();
      jwks = { keys: [...original.keys, k2Jwk] }; // k2 added, nothing withdrawn

      await clock.advance(JWKS_MAX_AGE_MS);
      await sut.refreshStaleIssuerKeys();
      expect(jwksFetches).toBe(2);
      expect(sut.authenticate(token)).not.toBeInstanceOf(Promise);

      jwksUp = false;
      await clock.advance(JWKS_MAX_AGE_MS);
      await sut.refreshStaleIssuerKeys();
      expect(jwksFetches).toBe(3);
      const hit = sut.authenticate(token);
      expect(hit).not.toBeInstanceOf(Promise);
      expect(nameOf(hit as WorkloadAuthentication)).toBe('deals-service');
    });

    it('does not take the same key with its members in another order for a withdrawal', async () => {
      const token = await verifiedAndCached();
      const reordered = Object.fromEntries(Object.entries(original.keys[0]).reverse()) as JWK;
      expect(Object.keys(reordered)).not.toEqual(Object.keys(original.keys[0]));
      jwks = { keys: [reordered] };

      await clock.advance(JWKS_MAX_AGE_MS);
      await sut.refreshStaleIssuerKeys();

      expect(jwksFetches).toBe(2);
      expect(sut.authenticate(token)).not.toBeInstanceOf(Promise);
    });

    it('fetches nothing for an issuer no caller has used yet', async () => {
      await clock.advance(JWKS_MAX_AGE_MS);
      await sut.refreshStaleIssuerKeys();
      expect(jwksFetches).toBe(0);
    });
  });
});
