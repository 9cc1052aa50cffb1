import { createPublicKey, verify } from 'node:crypto';
import { startIdentitySandbox, type RunningSandbox } from './index';
import { decodeJwt } from './spec-support';

describe('the workload issuer (projected ServiceAccount tokens)', () => {
  let sandbox: RunningSandbox;

  beforeAll(async () => {
    sandbox = await startIdentitySandbox({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => sandbox.close());

  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${sandbox.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const jwks = async (): Promise<{ keys: { kid: string }[] }> =>
    (await (await fetch(sandbox.workloadIssuer.jwksUri)).json()) as { keys: { kid: string }[] };

  it('publishes discovery naming its issuer and JWKS, like a Kubernetes API server', async () => {
    const res = await fetch(`${sandbox.workloadIssuer.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      issuer: `${sandbox.url}/workload-issuer`,
      jwks_uri: `${sandbox.url}/workload-issuer/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  });

  it('mints a token shaped like a projected ServiceAccount token, signed with a published key', async () => {
    const res = await post('/_sandbox/workload-tokens', {
      namespace: 'deals',
      serviceAccount: 'deals-api',
      pod: { name: 'deals-api-1', uid: 'pod-uid-1' },
    });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const { header, payload } = decodeJwt(token);

    expect(header).toEqual({ alg: 'RS256', typ: 'JWT', kid: await sandbox.workloadIssuer.kid() });
    expect(payload).toMatchObject({
      iss: sandbox.workloadIssuer.issuer,
      aud: ['token-vendor'],
      sub: 'system:serviceaccount:deals:deals-api',
      'kubernetes.io': {
        namespace: 'deals',
        pod: { name: 'deals-api-1', uid: 'pod-uid-1' },
        serviceaccount: { name: 'deals-api' },
      },
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(3600);
    const [jwk] = (await jwks()).keys;
    const [h, p, s] = token.split('.');
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    expect(verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'))).toBe(
      true,
    );
  });

  it('refuses a token request naming no workload', async () => {
    const res = await post('/_sandbox/workload-tokens', { audience: 'x' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_request',
      error_description: 'give namespace and serviceAccount, or a subject',
    });
  });

  it('rotates its key (keeping or dropping the old one) and can be taken down', async () => {
    const first = await sandbox.workloadIssuer.kid();
    const kept = (await (await post('/_sandbox/workload-issuer/rotate', {})).json()) as {
      kid: string;
    };
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([kept.kid, first]);
    const alone = await sandbox.workloadIssuer.rotateKey(false);
    expect((await jwks()).keys.map((k) => k.kid)).toEqual([alone]);

    const before = sandbox.workloadIssuer.jwksRequests().length;
    await fetch(`${sandbox.url}/_sandbox/workload-issuer/availability`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ available: false }),
    });
    expect((await fetch(sandbox.workloadIssuer.jwksUri)).status).toBe(503);
    sandbox.workloadIssuer.setAvailable(true);
    expect((await fetch(sandbox.workloadIssuer.jwksUri)).status).toBe(200);
    expect(sandbox.workloadIssuer.jwksRequests().length).toBe(before + 2);
  });
});
