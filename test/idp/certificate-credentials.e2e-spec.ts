import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { ConfigError } from '@app/config';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { SecretRotationService } from '@app/rotation';
import { get, post } from '../admin/load';
import {
  certificatePathOf,
  signingCertificate,
  startService,
  type InProcessService,
  type SigningCertificate,
  type TestCaller,
  type TestClient,
} from '../support';

/**
 * private_key_jwt with certificate credentials, as Microsoft Entra ID has them (README
 * "Identity providers"): the assertion names the certificate by `x5t#S256` and `x5t`, and the
 * sandbox finds the key by that thumbprint alone (no public key registered, no kid), over real
 * HTTP.
 */
const CALLER_KEY = 'cert-spec-caller-key-0001-aaaaaaaaaaaaaaaaa';
const ADMIN_KEY = 'cert-spec-admin-key-0002-bbbbbbbbbbbbbbbbbb';
const CALLERS: TestCaller[] = [
  { name: 'caller', keys: [CALLER_KEY], clients: ['*'] },
  { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
];
const DAY = 24 * 60 * 60_000;

/** RFC 7515 §4.1.7-8, computed here from the DER, independently of the service. */
const thumbprint = (pem: string, hash: 'sha256' | 'sha1'): string =>
  createHash(hash).update(new X509Certificate(pem).raw).digest('base64url');

const apps: InProcessService[] = [];
let idp: RunningSandbox;
beforeAll(async () => {
  idp = await startIdentitySandbox({ clients: [] });
});
afterAll(() => idp.close());
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

function entraClient(clientId: string, credential: SigningCertificate): TestClient {
  return {
    clientId,
    environment: 'uat',
    secret: credential.key,
    certificate: credential.cert,
    authMethod: 'private_key_jwt',
    fields: { signingAlg: 'PS256' },
  };
}

async function start(clients: TestClient[]): Promise<InProcessService> {
  const app = await startService({
    environments: { uat: { tokenUrl: idp.tokenUrl } },
    clients,
    callers: CALLERS,
    scheduler: false,
    logLevel: 'warn',
  });
  apps.push(app);
  return app;
}

const tokenOf = (app: InProcessService, clientId: string) =>
  get(`${app.url}/tokens/${clientId}`, CALLER_KEY);
const refresh = (app: InProcessService, clientId: string) =>
  post(`${app.url}/admin/clients/${clientId}/refresh`, ADMIN_KEY);
async function viewOf(app: InProcessService, clientId: string): Promise<Record<string, unknown>> {
  const res = await get(`${app.url}/admin/clients`, ADMIN_KEY);
  return (res.json().clients as Record<string, unknown>[]).find((c) => c.clientId === clientId)!;
}

describe('private_key_jwt with a certificate (Entra ID) (e2e)', () => {
  it('vends a token: the PS256 assertion names the certificate by x5t#S256 and x5t, and the IdP found the key by it', async () => {
    const clientId = 'entra.client';
    const credential = signingCertificate();
    idp.setClientAssertionCertificates(clientId, [credential.cert]);
    const app = await start([entraClient(clientId, credential)]);
    idp.resetStats();

    const res = await tokenOf(app, clientId);

    expect(res.status).toBe(200);
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 1, rejected: 0 });
    const [request] = idp.requests();
    expect(request).toMatchObject({ clientId, authMethod: 'private_key_jwt', status: 200 });
    expect(request.assertionHeader).toStrictEqual({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': thumbprint(credential.cert, 'sha256'),
      x5t: thumbprint(credential.cert, 'sha1'),
    });
    expect(request.assertionClaims).toMatchObject({
      iss: clientId,
      sub: clientId,
      aud: idp.tokenUrl,
    });
    expect((await viewOf(app, clientId)).certificateExpiresAt).toBe(
      new X509Certificate(credential.cert).validToDate.toISOString(),
    );
  });

  it('sends the kid too when keyId is configured', async () => {
    const clientId = 'entra-kid.client';
    const credential = signingCertificate();
    idp.setClientAssertionCertificates(clientId, [credential.cert]);
    const client = entraClient(clientId, credential);
    const app = await start([{ ...client, fields: { ...client.fields, keyId: 'k-2026' } }]);
    idp.resetStats();

    expect((await tokenOf(app, clientId)).status).toBe(200);
    expect(idp.requests()[0].assertionHeader).toStrictEqual({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': thumbprint(credential.cert, 'sha256'),
      x5t: thumbprint(credential.cert, 'sha1'),
      kid: 'k-2026',
    });
  });

  it('another certificate of the same key, unknown to the IdP, is refused → 502 with one IdP request', async () => {
    const clientId = 'entra-unknown.client';
    const registered = signingCertificate();
    const sameKey = signingCertificate({
      cn: 'not registered',
      keyPair: {
        privateKey: createPrivateKey(registered.key),
        publicKey: new X509Certificate(registered.cert).publicKey,
      },
    });
    idp.setClientAssertionCertificates(clientId, [registered.cert]);
    const app = await start([entraClient(clientId, sameKey)]);
    idp.resetStats();

    const res = await tokenOf(app, clientId);

    expect(res.status).toBe(502);
    expect(res.json().error).toBe('upstream_rejected');
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, issued: 0, rejected: 1 });
    expect(idp.requests()[0]).toMatchObject({ clientId, status: 400 });
    expect(idp.requests()[0].assertionHeader!['x5t#S256']).toBe(thumbprint(sameKey.cert, 'sha256'));
    expect(res.text).not.toContain('PRIVATE KEY');
  });

  it.each<[string, () => TestClient, RegExp]>([
    [
      "another key's certificate",
      () => ({
        ...entraClient('pair.client', signingCertificate()),
        certificate: signingCertificate().cert,
      }),
      /^clients\[0\]\.certificateFile: \/\S+\.crt does not match privateKeyFile$/,
    ],
    [
      'a file that is not a certificate',
      () => ({ ...entraClient('pair.client', signingCertificate()), certificate: 'hello\n' }),
      /^clients\[0\]\.certificateFile: \/\S+\.crt holds no PEM certificate$/,
    ],
    [
      'a certificateFile on a client_secret_post client',
      () => ({
        clientId: 'pair.client',
        environment: 'uat',
        secret: 'a-shared-secret',
        fields: { certificateFile: '/etc/token-vendor/c.crt' },
      }),
      /^clients\[0\]\.certificateFile: only used with authMethod private_key_jwt$/,
    ],
  ])('refuses %s at start, naming certificateFile', async (_what, client, problem) => {
    const failure = await start([client()]).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).problems).toEqual([expect.stringMatching(problem)]);
    expect((failure as ConfigError).message).not.toContain('PRIVATE KEY');
    expect(idp.stats().byClient['pair.client']).toBeUndefined();
  });

  it('a reload checks the pair the same way: a certificate of another key is refused, naming certificateFile, and the running pair stays', async () => {
    const clientId = 'entra-reload.client';
    const credential = signingCertificate();
    idp.setClientAssertionCertificates(clientId, [credential.cert]);
    const client = entraClient(clientId, credential);
    const app = await start([client]);
    const certificateFile = certificatePathOf(app.dir, client);
    writeFileSync(certificateFile, signingCertificate().cert);

    const res = await post(`${app.url}/admin/reload`, ADMIN_KEY);

    expect(res.status).toBe(400);
    expect(res.json().message).toContain(
      `clients[0].certificateFile: ${certificateFile} does not match privateKeyFile`,
    );
    expect(res.text).not.toContain('PRIVATE KEY');
    idp.resetStats();
    expect((await tokenOf(app, clientId)).status).toBe(200);
    expect(idp.requests().map((r) => r.assertionHeader!['x5t#S256'])).toEqual([
      thumbprint(credential.cert, 'sha256'),
    ]);
  });

  it('rotates the certificate and key on disk as one pair: half a rotation is never sent, the whole pair is tried and adopted', async () => {
    const clientId = 'entra-rotating.client';
    const old = signingCertificate();
    const next = signingCertificate();
    idp.setClientAssertionCertificates(clientId, [old.cert, next.cert]);
    const client = entraClient(clientId, old);
    const app = await start([client]);
    const rotation = app.app.get(SecretRotationService);
    const replace = (path: string, text: string): void => {
      writeFileSync(`${path}.new`, text); // the kubelet's swap: the file changes at once
      renameSync(`${path}.new`, path);
    };
    expect((await tokenOf(app, clientId)).status).toBe(200);
    idp.resetStats();

    // The new certificate lands first, beside the old key: not a pair, nothing is tried, and
    // the log says so once (field and path, no key), however often the files are polled.
    replace(certificatePathOf(app.dir, client), next.cert);
    await rotation.checkAll();
    await rotation.checkAll();
    expect(idp.stats().tokenRequests).toBe(0);
    expect(
      app.logs
        .entries()
        .filter(
          (l) =>
            l.msg ===
            'client credential files changed but are not usable; the credential in use stays',
        )
        .map((l) => [l.clientId, l.problem]),
    ).toEqual([
      [
        clientId,
        `certificateFile: ${certificatePathOf(app.dir, client)} does not match privateKeyFile`,
      ],
    ]);
    expect(await viewOf(app, clientId)).toMatchObject({ secretCandidatePending: false });
    expect((await refresh(app, clientId)).status).toBe(200);
    expect(idp.requests().map((r) => r.assertionHeader!['x5t#S256'])).toEqual([
      thumbprint(old.cert, 'sha256'),
    ]);

    // The key follows: the pair is tried against the IdP and adopted.
    idp.resetStats();
    replace(app.secretPath(client), next.key);
    await rotation.checkAll();
    const adopted = await viewOf(app, clientId);
    expect(adopted).toMatchObject({
      secretCandidatePending: false,
      lastRotationAt: expect.any(String),
      certificateExpiresAt: new X509Certificate(next.cert).validToDate.toISOString(),
    });
    expect(idp.requests().map((r) => [r.status, r.assertionHeader!['x5t#S256']])).toEqual([
      [200, thumbprint(next.cert, 'sha256')],
    ]);

    // The IdP drops the old certificate: the service already signs with the new pair.
    idp.setClientAssertionCertificates(clientId, [next.cert]);
    idp.resetStats();
    expect((await refresh(app, clientId)).status).toBe(200);
    expect(idp.requests().map((r) => [r.status, r.assertionHeader!.x5t])).toEqual([
      [200, thumbprint(next.cert, 'sha1')],
    ]);
  });

  it('warns at start about a certificate that ends within 14 days, naming the client and the date', async () => {
    const clientId = 'entra-ending.client';
    const notAfter = new Date(Math.floor((Date.now() + 5 * DAY + 12 * 3_600_000) / 1000) * 1000);
    const credential = signingCertificate({ notAfter });
    idp.setClientAssertionCertificates(clientId, [credential.cert]);

    const app = await start([entraClient(clientId, credential)]);

    const warnings = app.logs
      .entries()
      .filter((e) => e.msg === 'client certificate expires within 14 days; rotate it');
    expect(warnings).toEqual([
      expect.objectContaining({
        environment: 'uat',
        clientId,
        field: 'certificateFile',
        expiresAt: notAfter.toISOString(),
        expired: false,
        daysLeft: 5,
      }),
    ]);
    expect(app.logs.lines.join('\n')).not.toContain('PRIVATE KEY');
    expect((await tokenOf(app, clientId)).status).toBe(200);
  });
});
