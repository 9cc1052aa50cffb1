import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { get, post } from '../admin/load';
import {
  createTestPki,
  type InProcessService,
  issueClientCertificate,
  selfSignedClientCertificate,
  startService,
  type TestCaller,
  type TestClient,
  type TestClientCertificate,
  type TestEnvironment,
  type TestPki,
  waitFor,
} from '../support';

/**
 * Client certificates (RFC 8705) against the sandbox over https on loopback: tls_client_auth
 * (a certificate of the client CA with the registered subject), self_signed_tls_client_auth
 * (a pinned certificate), rotation of the certificate files without a restart, and the
 * discovery document's mtls_endpoint_aliases.
 */
const CALLER_KEY = 'mtls-spec-caller-key-0001-aaaaaaaaaaaaaaaaaa';
const ADMIN_KEY = 'mtls-spec-admin-key-0002-bbbbbbbbbbbbbbbbbbb';
const CALLERS: TestCaller[] = [
  { name: 'caller', keys: [CALLER_KEY], clients: ['*'] },
  { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
];

let pki: TestPki;
let idp: RunningSandbox;
const apps: InProcessService[] = [];

beforeAll(async () => {
  pki = createTestPki();
  idp = await startIdentitySandbox({
    clients: [
      { clientId: 'mtls-pki.client', tlsSubjectDn: 'CN=mtls-pki.client' },
      { clientId: 'secret.client', secret: 'mtls-spec-secret-1' },
    ],
    tls: { key: pki.serverKey, cert: pki.serverCert, clientCa: readCa() },
  });
});
afterAll(async () => {
  await idp.close();
  pki.dispose();
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

function readCa(): string {
  return readFileSync(pki.caFile, 'utf8');
}

let fileCounter = 0;
/** Writes a certificate and key into the PKI folder; returns the client entry's fields. */
function certificateFiles(credential: TestClientCertificate): Record<string, string> {
  fileCounter++;
  const clientCertFile = join(pki.dir, `vendor-client-${fileCounter}.pem`);
  const clientKeyFile = join(pki.dir, `vendor-client-${fileCounter}.key`);
  writeFileSync(clientCertFile, credential.cert);
  writeFileSync(clientKeyFile, credential.key);
  return { clientCertFile, clientKeyFile };
}

async function start(
  environment: TestEnvironment,
  clients: TestClient[],
  scheduler = false,
): Promise<InProcessService> {
  const app = await startService({
    environments: { uat: environment },
    clients,
    callers: CALLERS,
    scheduler,
    logLevel: 'warn',
  });
  apps.push(app);
  return app;
}

const tokenOf = (app: InProcessService, clientId: string) =>
  get(`${app.url}/tokens/${clientId}`, CALLER_KEY);

describe('client certificates (e2e)', () => {
  beforeEach(() => idp.resetStats());

  it('tls_client_auth: a certificate of the client CA with the registered subject', async () => {
    const credential = issueClientCertificate(pki, 'mtls-pki.client');
    const app = await start({ tokenUrl: idp.tokenUrl, caFile: pki.caFile }, [
      {
        clientId: 'mtls-pki.client',
        environment: 'uat',
        secret: '',
        authMethod: 'tls_client_auth',
        fields: certificateFiles(credential),
      },
    ]);

    const res = await tokenOf(app, 'mtls-pki.client');
    expect(res.status).toBe(200);
    expect(idp.requests()).toEqual([
      expect.objectContaining({
        clientId: 'mtls-pki.client',
        authMethod: 'tls_client_auth',
        status: 200,
      }),
    ]);
  });

  it('a certificate with another subject is refused by the IdP → 502', async () => {
    const credential = issueClientCertificate(pki, 'someone-else.client');
    const app = await start({ tokenUrl: idp.tokenUrl, caFile: pki.caFile }, [
      {
        clientId: 'mtls-pki.client',
        environment: 'uat',
        secret: '',
        authMethod: 'tls_client_auth',
        fields: certificateFiles(credential),
      },
    ]);

    const res = await tokenOf(app, 'mtls-pki.client');

    expect(res.status).toBe(502);
    expect(res.json().error).toBe('upstream_rejected');
    expect(idp.stats()).toMatchObject({ tokenRequests: 1, rejected: 1 });
  });

  it('self_signed_tls_client_auth: the pinned certificate, rotated on disk without a restart', async () => {
    const clientId = 'mtls-self.client';
    const certA = selfSignedClientCertificate(pki.dir, clientId);
    const certB = selfSignedClientCertificate(pki.dir, clientId);
    const unknown = selfSignedClientCertificate(pki.dir, clientId);
    idp.setClientCertificates(clientId, [certA.cert]);
    const fields = certificateFiles(certA);
    const app = await start(
      { tokenUrl: idp.tokenUrl, caFile: pki.caFile },
      [
        {
          clientId,
          environment: 'uat',
          secret: '',
          authMethod: 'self_signed_tls_client_auth',
          fields,
        },
      ],
      true,
    );
    const view = async (): Promise<Record<string, unknown>> => {
      const res = await get(`${app.url}/admin/clients`, ADMIN_KEY);
      return (res.json().clients as Record<string, unknown>[]).find(
        (c) => c.clientId === clientId,
      )!;
    };
    const refresh = () => post(`${app.url}/admin/clients/${clientId}/refresh`, ADMIN_KEY);

    expect((await tokenOf(app, clientId)).status).toBe(200);
    expect(idp.requests().at(-1)).toMatchObject({
      authMethod: 'self_signed_tls_client_auth',
      status: 200,
    });

    // A certificate the IdP does not know: tried, refused, certificate A stays in use.
    writeFileSync(fields.clientCertFile, unknown.cert);
    writeFileSync(fields.clientKeyFile, unknown.key);
    await waitFor(
      'the unknown certificate to be tried',
      async () => ((await view()).lastRotationError ? true : undefined),
      10_000,
    );
    idp.resetStats();
    expect((await refresh()).status).toBe(200);
    expect(idp.requests().map((r) => [r.authMethod, r.status])).toEqual([
      ['self_signed_tls_client_auth', 200],
    ]);

    // The IdP pins B only; the files follow; B is adopted without a restart.
    idp.setClientCertificates(clientId, [certB.cert]);
    writeFileSync(fields.clientCertFile, certB.cert);
    writeFileSync(fields.clientKeyFile, certB.key);
    await waitFor(
      'certificate B to be adopted',
      async () => {
        const v = await view();
        return v.secretCandidatePending === false && v.lastRotationAt ? true : undefined;
      },
      10_000,
    );
    idp.resetStats();
    expect((await refresh()).status).toBe(200);
    expect(idp.requests().map((r) => r.status)).toEqual([200]);
    // Two certificates, each seen only at a secret-file poll (every 2 s, SECRET_POLL_INTERVAL_MS):
    // the waits' own 10 s budgets are the requirement, not Jest's default 5 s.
  }, 30_000);

  it("discovery: certificate clients use the IdP's mtls_endpoint_aliases, secret clients the token endpoint", async () => {
    const clientId = 'mtls-disco.client';
    const cert = selfSignedClientCertificate(pki.dir, clientId);
    idp.setClientCertificates(clientId, [cert.cert]);
    const app = await start({ issuer: idp.url, caFile: pki.caFile }, [
      {
        clientId,
        environment: 'uat',
        secret: '',
        authMethod: 'self_signed_tls_client_auth',
        fields: certificateFiles(cert),
      },
      { clientId: 'secret.client', environment: 'uat', secret: 'mtls-spec-secret-1' },
    ]);

    expect((await tokenOf(app, clientId)).status).toBe(200);
    expect((await tokenOf(app, 'secret.client')).status).toBe(200);

    const [mtls, secret] = idp.requests();
    expect(mtls).toMatchObject({ clientId, mtlsAlias: true, status: 200 });
    expect(secret).toMatchObject({ clientId: 'secret.client', status: 200 });
    expect(secret.mtlsAlias).toBeUndefined();
  });
});
