import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import {
  ASSERTION_LIFETIME_SECONDS,
  CLIENT_ASSERTION_TYPE,
  signClientAssertion,
} from './client-assertion';
import { signingCertificate } from '../../../test/support/self-signed-certificate';
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

describe('signClientAssertion with a certificate (Entra ID certificate credentials)', () => {
  /** RFC 7515 §4.1.7-8, computed here from the DER, independently of the code under test. */
  const thumbprint = (pem: string, hash: 'sha256' | 'sha1'): string =>
    createHash(hash).update(new X509Certificate(pem).raw).digest('base64url');

  it.each<['RS256' | 'PS256' | 'ES256', 'rsa' | 'ec']>([
    ['PS256', 'rsa'],
    ['RS256', 'rsa'],
    ['ES256', 'ec'],
  ])(
    '%s: the header names the certificate by x5t#S256 and x5t, no kid without keyId',
    async (alg, kind) => {
      const credential = signingCertificate({ kind });

      const sut = await signClientAssertion({
        clientId: 'entra.client',
        tokenUrl: TOKEN_URL,
        privateKey: credential.key,
        certificate: credential.cert,
        signingAlg: alg,
        now: NOW,
      });

      expect(decodeProtectedHeader(sut)).toStrictEqual({
        alg,
        typ: 'JWT',
        'x5t#S256': thumbprint(credential.cert, 'sha256'),
        x5t: thumbprint(credential.cert, 'sha1'),
      });
      expect(thumbprint(credential.cert, 'sha256')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(thumbprint(credential.cert, 'sha1')).toMatch(/^[A-Za-z0-9_-]{27}$/);
      const certificateKey = new X509Certificate(credential.cert).publicKey;
      const { payload } = await jwtVerify(sut, certificateKey, {
        currentDate: new Date(NOW),
        algorithms: [alg],
      });
      expect(payload).toMatchObject({ iss: 'entra.client', sub: 'entra.client', aud: TOKEN_URL });
    },
  );

  it('keeps the kid beside the thumbprints when keyId is configured', async () => {
    const credential = signingCertificate();

    const sut = await signClientAssertion({
      clientId: 'entra.client',
      tokenUrl: TOKEN_URL,
      privateKey: credential.key,
      certificate: credential.cert,
      signingAlg: 'PS256',
      keyId: 'k-2026',
      now: NOW,
    });

    expect(decodeProtectedHeader(sut)).toStrictEqual({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': thumbprint(credential.cert, 'sha256'),
      x5t: thumbprint(credential.cert, 'sha1'),
      kid: 'k-2026',
    });
  });

  it('names each certificate by its own thumbprints (two certificates of one key differ)', async () => {
    const first = signingCertificate();
    const pair = {
      privateKey: createPrivateKey(first.key),
      publicKey: new X509Certificate(first.cert).publicKey,
    };
    const second = signingCertificate({ keyPair: pair, cn: 'renewed' });
    const sign = (cert: string) =>
      signClientAssertion({
        clientId: 'c',
        tokenUrl: TOKEN_URL,
        privateKey: first.key,
        certificate: cert,
        signingAlg: 'PS256',
        now: NOW,
      });

    const [a, b] = await Promise.all([sign(first.cert), sign(second.cert)]);

    expect(decodeProtectedHeader(a)['x5t#S256']).toBe(thumbprint(first.cert, 'sha256'));
    expect(decodeProtectedHeader(b)['x5t#S256']).toBe(thumbprint(second.cert, 'sha256'));
    expect(decodeProtectedHeader(a)['x5t#S256']).not.toBe(decodeProtectedHeader(b)['x5t#S256']);
  });

  it('refuses text that is not a certificate, without quoting it', async () => {
    const credential = signingCertificate();
    const failure = await signClientAssertion({
      clientId: 'c',
      tokenUrl: TOKEN_URL,
      privateKey: credential.key,
      certificate: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
      signingAlg: 'PS256',
      now: NOW,
    }).catch((e: unknown) => e as Error);

    expect(failure).toBeInstanceOf(TypeError);
    expect((failure as Error).message).toBe(
      'the certificate of client "c" is not a PEM certificate',
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
