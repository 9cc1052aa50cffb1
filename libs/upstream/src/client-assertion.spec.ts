import { generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import {
  ASSERTION_LIFETIME_SECONDS,
  CLIENT_ASSERTION_TYPE,
  signClientAssertion,
} from './client-assertion';
import { buildTokenHttpRequest } from './client-authentication';
import type { TokenRequest } from './token-request';

const TOKEN_URL = 'https://idp.example/connect/token';
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0);

describe('signClientAssertion', () => {
  it.each<['RS256' | 'PS256' | 'ES256', 'rsa' | 'ec']>([
    ['RS256', 'rsa'],
    ['PS256', 'rsa'],
    ['ES256', 'ec'],
  ])(
    'signs a %s assertion the public key verifies, with the RFC 7523 claims',
    async (alg, kind) => {
      const pair =
        kind === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const privateKey = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

      const sut = await signClientAssertion({
        clientId: 'c.client',
        tokenUrl: TOKEN_URL,
        privateKey,
        signingAlg: alg,
        keyId: 'k-1',
        now: NOW,
      });

      const { payload } = await jwtVerify(sut, pair.publicKey, {
        currentDate: new Date(NOW),
        algorithms: [alg],
      });
      expect(decodeProtectedHeader(sut)).toEqual({ alg, typ: 'JWT', kid: 'k-1' });
      expect(payload).toEqual({
        iss: 'c.client',
        sub: 'c.client',
        aud: TOKEN_URL,
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
        iat: NOW / 1000,
        exp: NOW / 1000 + ASSERTION_LIFETIME_SECONDS,
      });
    },
  );

  it('gives every assertion its own jti', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const input = {
      clientId: 'c',
      tokenUrl: TOKEN_URL,
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      signingAlg: 'ES256' as const,
      now: NOW,
    };
    const [a, b] = await Promise.all([signClientAssertion(input), signClientAssertion(input)]);
    expect(decodeProtectedHeader(a).kid).toBeUndefined();
    expect(JSON.parse(Buffer.from(a.split('.')[1], 'base64url').toString()).jti).not.toBe(
      JSON.parse(Buffer.from(b.split('.')[1], 'base64url').toString()).jti,
    );
  });

  it('refuses a key that does not fit, without quoting it', async () => {
    const failure = await signClientAssertion({
      clientId: 'c',
      tokenUrl: TOKEN_URL,
      privateKey: '-----BEGIN PRIVATE KEY-----\nnot-a-key\n-----END PRIVATE KEY-----',
      signingAlg: 'RS256',
      now: NOW,
    }).catch((e: unknown) => e as Error);

    expect((failure as Error).message).toBe(
      'the private key of client "c" is not a PEM private key or a private JWK',
    );
  });
});

describe('buildTokenHttpRequest: other methods and parameters', () => {
  const base: TokenRequest = {
    environment: 'uat',
    clientId: 'c.client',
    secret: 'ignored-for-these',
    authMethod: 'private_key_jwt',
    tokenUrl: TOKEN_URL,
    timeoutMs: 1000,
  };

  it('private_key_jwt: client_id, the assertion type and the assertion; no secret, no header', () => {
    const sut = buildTokenHttpRequest(base, 'a.b.c');
    expect(sut.body).toBe(
      `grant_type=client_credentials&client_id=c.client&client_assertion_type=${encodeURIComponent(CLIENT_ASSERTION_TYPE)}&client_assertion=a.b.c`,
    );
    expect(sut.headers.Authorization).toBeUndefined();
  });

  it.each(['tls_client_auth', 'self_signed_tls_client_auth'] as const)(
    '%s: only client_id names the client (the certificate authenticates)',
    (authMethod) => {
      expect(buildTokenHttpRequest({ ...base, authMethod }).body).toBe(
        'grant_type=client_credentials&client_id=c.client',
      );
    },
  );

  it('appends audience, each resource and the extra parameters after scope and authentication', () => {
    const sut = buildTokenHttpRequest({
      ...base,
      authMethod: 'client_secret_post',
      secret: 's',
      scope: 'a',
      audience: 'https://api',
      resources: ['https://r1', 'https://r2'],
      extraParams: new Map([['organization', 'org 1']]),
    });
    expect(sut.body).toBe(
      'grant_type=client_credentials&scope=a&client_id=c.client&client_secret=s&audience=https%3A%2F%2Fapi&resource=https%3A%2F%2Fr1&resource=https%3A%2F%2Fr2&organization=org+1',
    );
  });

  it('never lets an extra parameter override one of ours', () => {
    const sut = buildTokenHttpRequest({
      ...base,
      authMethod: 'client_secret_post',
      secret: 's',
      extraParams: new Map([['grant_type', 'password']]),
    });
    expect(new URLSearchParams(sut.body).getAll('grant_type')).toEqual(['client_credentials']);
  });
});
