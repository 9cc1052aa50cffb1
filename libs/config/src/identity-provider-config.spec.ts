import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readClientSecret } from './client-secrets.reader';
import { ConfigError } from './config.error';
import type { ClientConfig, ServiceConfig } from './config.types';
import { parsePrivateKey } from './private-key';
import { requestShapeOf } from './request-shape';
import { parseServiceConfig } from './service-config.loader';

/** The identity-provider fields of environments and clients (README "Identity providers"). */
const BASE_DIR = '/etc/token-vendor';

function parse(
  environment: Record<string, unknown>,
  client: Record<string, unknown>,
): ServiceConfig {
  const raw = {
    environments: { uat: environment },
    clients: [{ clientId: 'c.client', environment: 'uat', ...client }],
  };
  return parseServiceConfig(stringify(raw), 'test.yaml', BASE_DIR);
}
function problemsOf(
  environment: Record<string, unknown>,
  client: Record<string, unknown>,
): readonly string[] {
  try {
    parse(environment, client);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}
const HTTPS = { tokenUrl: 'https://idp.example.test/connect/token' };
const SECRET = { secretFile: 'secrets/c' };

describe('identity-provider configuration', () => {
  it('parses a private_key_jwt client: key file resolved, RS256 by default', () => {
    const sut = parse(HTTPS, {
      authMethod: 'private_key_jwt',
      privateKeyFile: 'keys/c.pem',
      keyId: 'k1',
    });

    expect(sut.clients[0]).toEqual({
      key: 'uat/c.client',
      clientId: 'c.client',
      environment: 'uat',
      secretSource: { kind: 'file', path: `${BASE_DIR}/keys/c.pem`, field: 'privateKeyFile' },
      scope: undefined,
      authMethod: 'private_key_jwt',
      signingAlg: 'RS256',
      keyId: 'k1',
    });
  });

  it('parses a private_key_jwt client with a certificateFile: read with the key, named in the header', () => {
    const sut = parse(HTTPS, {
      authMethod: 'private_key_jwt',
      privateKeyFile: 'keys/c.pem',
      certificateFile: 'keys/c.crt',
      signingAlg: 'PS256',
    });

    expect(sut.clients[0]).toEqual({
      key: 'uat/c.client',
      clientId: 'c.client',
      environment: 'uat',
      secretSource: {
        kind: 'file',
        path: `${BASE_DIR}/keys/c.pem`,
        field: 'privateKeyFile',
        certificatePath: `${BASE_DIR}/keys/c.crt`,
      },
      scope: undefined,
      authMethod: 'private_key_jwt',
      signingAlg: 'PS256',
      assertionCertificate: true,
    });
  });

  it('parses a certificate client into a tls credential source', () => {
    const sut = parse(HTTPS, {
      authMethod: 'self_signed_tls_client_auth',
      clientCertFile: 'certs/c.crt',
      clientKeyFile: 'certs/c.key',
    });

    expect(sut.clients[0].secretSource).toEqual({
      kind: 'tls',
      certPath: `${BASE_DIR}/certs/c.crt`,
      keyPath: `${BASE_DIR}/certs/c.key`,
    });
  });

  it('parses audience, a single resource as a list, and extraParams as strings', () => {
    const sut = parse(HTTPS, {
      ...SECRET,
      audience: 'https://api.example.test',
      resource: 'https://r.example.test/',
      extraParams: { organization: 'org_1', max_age: 60, flag: true },
    });

    expect(sut.clients[0]).toMatchObject({
      audience: 'https://api.example.test',
      resources: ['https://r.example.test/'],
      extraParams: new Map([
        ['organization', 'org_1'],
        ['max_age', '60'],
        ['flag', 'true'],
      ]),
    });
  });

  it.each([
    'grant_type',
    'client_id',
    'client_secret',
    'client_assertion',
    'client_assertion_type',
    'scope',
    'audience',
    'resource',
  ])('refuses extraParams.%s (set by the service or by its own field)', (name) => {
    expect(problemsOf(HTTPS, { ...SECRET, extraParams: { [name]: 'x' } })).toEqual([
      expect.stringMatching(/^clients\[0\]\.extraParams.*cannot be overridden/),
    ]);
  });

  it.each(['api_key', 'refresh_token', 'db_password', 'my_secret', 'private_jwk'])(
    'refuses extraParams.%s (would carry a credential)',
    (name) => {
      expect(problemsOf(HTTPS, { ...SECRET, extraParams: { [name]: 'x' } })).toEqual([
        expect.stringMatching(/^clients\[0\]\.extraParams.*would carry a credential/),
      ]);
    },
  );

  it.each<[string, Record<string, unknown>, Record<string, unknown>, string[]]>([
    [
      'a secret on a private_key_jwt client',
      HTTPS,
      { authMethod: 'private_key_jwt', privateKeyFile: 'k', ...SECRET },
      ['clients[0].secretFile: not used with authMethod private_key_jwt'],
    ],
    [
      'a certificateFile on a secret client',
      HTTPS,
      { ...SECRET, certificateFile: 'c.crt' },
      ['clients[0].certificateFile: only used with authMethod private_key_jwt'],
    ],
    [
      'a certificateFile on an mTLS client',
      HTTPS,
      {
        authMethod: 'tls_client_auth',
        clientCertFile: 'c.crt',
        clientKeyFile: 'c.key',
        certificateFile: 'c.crt',
      },
      ['clients[0].certificateFile: only used with authMethod private_key_jwt'],
    ],
    [
      'a certificateFile without its privateKeyFile',
      HTTPS,
      { authMethod: 'private_key_jwt', certificateFile: 'c.crt' },
      ['clients[0].privateKeyFile: required with authMethod private_key_jwt'],
    ],
    [
      'a key id on a secret client',
      HTTPS,
      { ...SECRET, keyId: 'k1' },
      ['clients[0].keyId: only used with authMethod private_key_jwt'],
    ],
    [
      'a certificate client without its key',
      HTTPS,
      { authMethod: 'tls_client_auth', clientCertFile: 'c.crt' },
      ['clients[0].clientKeyFile: required with authMethod tls_client_auth'],
    ],
    [
      'both tokenUrl and issuer',
      { ...HTTPS, issuer: 'https://idp.example.test' },
      SECRET,
      ['environments.uat.tokenUrl: exactly one of tokenUrl or issuer is required'],
    ],
    [
      'neither tokenUrl nor issuer',
      {},
      SECRET,
      ['environments.uat.tokenUrl: exactly one of tokenUrl or issuer is required'],
    ],
    [
      'an http:// issuer beyond loopback',
      { issuer: 'http://idp.example.test' },
      SECRET,
      [
        'environments.uat.issuer: http:// is accepted only for loopback hosts; use https:// or set allowInsecureHttp: true',
      ],
    ],
    [
      'an issuer with a query',
      { issuer: 'https://idp.example.test/?tenant=1' },
      SECRET,
      ['environments.uat.issuer: must have no query or fragment (OpenID Connect Discovery §3)'],
    ],
    [
      'a signingAlg nobody supports here',
      HTTPS,
      { authMethod: 'private_key_jwt', privateKeyFile: 'k', signingAlg: 'HS256' },
      ['clients[0].signingAlg: Invalid option: expected one of "RS256"|"PS256"|"ES256"'],
    ],
  ])('refuses %s, naming the field', (_what, environment, client, problems) => {
    expect(problemsOf(environment, client)).toEqual(problems);
  });

  it.each(['http://127.0.0.1:4000/connect/token', 'http://localhost/t', 'http://[::1]:80/t'])(
    'accepts loopback %s over http',
    (tokenUrl) => {
      expect(parse({ tokenUrl }, SECRET).environments.get('uat')!.tokenUrl).toBe(tokenUrl);
    },
  );

  it('accepts a non-loopback http:// URL with allowInsecureHttp: true', () => {
    const sut = parse({ tokenUrl: 'http://idp.internal/t', allowInsecureHttp: true }, SECRET);
    expect(sut.environments.get('uat')).toMatchObject({ allowInsecureHttp: true });
  });
});

describe('requestShapeOf', () => {
  const shapeOf = (client: Record<string, unknown>, environment = HTTPS) => {
    const config = parse(environment, client);
    return requestShapeOf(config.clients[0], config.environments.get('uat')!);
  };

  it('lists every request-shaping field, extraParams sorted by name', () => {
    expect(
      shapeOf({
        ...SECRET,
        scope: 'a b',
        audience: 'https://api',
        resource: ['https://r2', 'https://r1'],
        extraParams: { z: '1', a: '2' },
      }),
    ).toEqual({
      environment: 'uat',
      clientId: 'c.client',
      tokenUrl: HTTPS.tokenUrl,
      authMethod: 'client_secret_post',
      scope: 'a b',
      audience: 'https://api',
      resources: ['https://r2', 'https://r1'],
      extraParams: [
        ['a', '2'],
        ['z', '1'],
      ],
    });
  });

  it('changes when the assertion starts naming a certificate, not with where the file is', () => {
    const key = { authMethod: 'private_key_jwt', privateKeyFile: 'k.pem' };
    const withCertificate = shapeOf({ ...key, certificateFile: 'a/c.crt' });

    expect(withCertificate).toMatchObject({ assertionCertificate: true });
    expect(shapeOf(key)).not.toHaveProperty('assertionCertificate');
    expect(JSON.stringify(shapeOf({ ...key, certificateFile: 'b/other.crt' }))).toBe(
      JSON.stringify(withCertificate),
    );
  });

  it('does not change with the credential, and changes with what the IdP sees', () => {
    const base = JSON.stringify(shapeOf({ ...SECRET, audience: 'https://api' }));
    expect(JSON.stringify(shapeOf({ secretEnv: 'OTHER', audience: 'https://api' }))).toBe(base);
    expect(JSON.stringify(shapeOf({ ...SECRET, audience: 'https://other' }))).not.toBe(base);
    expect(
      JSON.stringify(shapeOf({ ...SECRET, audience: 'https://api', extraParams: { a: '1' } })),
    ).not.toBe(base);
    expect(
      JSON.stringify(
        shapeOf({ ...SECRET, audience: 'https://api' }, { issuer: 'https://idp' } as never),
      ),
    ).not.toBe(base);
  });
});

describe('reading key and certificate credentials', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'idp-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const keyClient = (path: string, signingAlg: 'RS256' | 'ES256' = 'RS256'): ClientConfig => ({
    key: 'uat/c',
    clientId: 'c',
    environment: 'uat',
    secretSource: { kind: 'file', path, field: 'privateKeyFile' },
    authMethod: 'private_key_jwt',
    signingAlg,
  });

  it('reads a PKCS#8 PEM key and a private JWK', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }));
    writeFileSync(join(dir, 'ec.pem'), pem);
    writeFileSync(join(dir, 'ec.jwk'), jwk);

    expect(readClientSecret(keyClient(join(dir, 'ec.pem'), 'ES256'), {})).toBe(pem.trim());
    expect(readClientSecret(keyClient(join(dir, 'ec.jwk'), 'ES256'), {})).toBe(jwk);
    expect(parsePrivateKey(jwk, 'ES256').asymmetricKeyType).toBe('ec');
  });

  it.each<[string, () => string, 'RS256' | 'ES256', string]>([
    ['not a key', () => 'hello', 'RS256', 'is not a PEM private key or a private JWK'],
    [
      'a short RSA key',
      () =>
        generateKeyPairSync('rsa', { modulusLength: 1024 })
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString(),
      'RS256',
      'holds an RSA key shorter than 2048 bits',
    ],
    [
      'an EC key for RS256',
      () =>
        generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
          .privateKey.export({ type: 'pkcs8', format: 'pem' })
          .toString(),
      'RS256',
      'holds a ec key; RS256 needs rsa',
    ],
  ])('refuses %s, naming privateKeyFile and never quoting it', (_what, content, alg, problem) => {
    const path = join(dir, `bad-${alg}-${problem.length}`);
    writeFileSync(path, content());

    expect(readClientSecret(keyClient(path, alg), {})).toEqual({
      field: 'privateKeyFile',
      problem: `${path} ${problem}`,
    });
  });

  it('refuses a certificate file with a key that is not its own, naming clientKeyFile', () => {
    // No openssl here: a certificate is needed only as "some PEM certificate"; none parses.
    writeFileSync(
      join(dir, 'c.crt'),
      '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
    );
    writeFileSync(join(dir, 'c.key'), 'x');
    const client: ClientConfig = {
      key: 'uat/c',
      clientId: 'c',
      environment: 'uat',
      secretSource: { kind: 'tls', certPath: join(dir, 'c.crt'), keyPath: join(dir, 'c.key') },
      authMethod: 'tls_client_auth',
    };

    expect(readClientSecret(client, {})).toEqual({
      field: 'clientCertFile',
      problem: `${join(dir, 'c.crt')} holds no PEM certificate`,
    });
  });
});
