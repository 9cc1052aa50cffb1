import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError } from './config.error';
import type { ServiceConfig } from './config.types';
import { loadServiceConfigFile, parseServiceConfig } from './service-config.loader';
import { insecureHttp, isKeySourceUrl, isLoopbackHost } from './service-config.schema';

const DIGEST_A = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const DIGEST_B = '60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752';
const DIGEST_C = 'fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13';
const SECRET_VALUE = 'hunter2-do-not-print';
const BASE_DIR = '/etc/token-vendor';

interface RawClient {
  clientId?: string;
  environment?: string;
  secretFile?: string;
  secretEnv?: string;
  scope?: string;
  authMethod?: string;
  [field: string]: unknown;
}
interface RawCaller {
  name?: string;
  keySha256?: string | string[];
  clients?: string[];
  admin?: boolean;
  [field: string]: unknown;
}
/** The configuration as written, before validation: tests break it field by field. */
interface Raw {
  environments: Record<string, { tokenUrl?: string; timeoutMs?: number }>;
  clients: RawClient[];
  callers: RawCaller[];
  refresh?: Record<string, number>;
  [field: string]: unknown;
}

/**
 * The README example ("The configuration file"), with a second environment and client to
 * exercise every field.
 */
function fullConfig(): Raw {
  return {
    environments: {
      uat: { tokenUrl: 'https://identity.uat.us-cas.ipreo.com/connect/token' },
      production: { tokenUrl: 'https://identity.us-cas.ipreo.com/connect/token', timeoutMs: 5000 },
    },
    clients: [
      {
        clientId: 'api-fake-test.client',
        environment: 'uat',
        secretFile: 'secrets/api-fake-test.client',
        scope: 'deals-read permissions-read',
      },
      {
        clientId: 'api-fake-test.client',
        environment: 'production',
        secretEnv: 'CAS_SECRET_FAKE_TEST',
        authMethod: 'client_secret_basic',
      },
    ],
    callers: [
      {
        name: 'deals-service',
        keySha256: [DIGEST_A, DIGEST_B.toUpperCase()],
        clients: ['api-fake-test.client'],
      },
      { name: 'ops', keySha256: DIGEST_C, clients: ['*', 'uat/api-fake-test.client'], admin: true },
    ],
  };
}

function parse(raw: Raw | string): ServiceConfig {
  const text = typeof raw === 'string' ? raw : stringify(raw);
  return parseServiceConfig(text, 'test.yaml', BASE_DIR);
}

function configErrorOf(raw: Raw | string): ConfigError {
  try {
    parse(raw);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function withChange(change: (c: Raw) => void): Raw {
  const c = fullConfig();
  change(c);
  return c;
}

describe('parseServiceConfig', () => {
  it('parses the README example and applies every default', () => {
    const sut = parse(fullConfig());

    expect(sut).toEqual({
      environments: new Map([
        [
          'uat',
          {
            name: 'uat',
            tokenUrl: 'https://identity.uat.us-cas.ipreo.com/connect/token',
            timeoutMs: 10_000,
            allowInsecureHttp: false,
          },
        ],
        [
          'production',
          {
            name: 'production',
            tokenUrl: 'https://identity.us-cas.ipreo.com/connect/token',
            timeoutMs: 5000,
            allowInsecureHttp: false,
          },
        ],
      ]),
      clients: [
        {
          key: 'uat/api-fake-test.client',
          clientId: 'api-fake-test.client',
          environment: 'uat',
          secretSource: { kind: 'file', path: '/etc/token-vendor/secrets/api-fake-test.client' },
          scope: 'deals-read permissions-read',
          authMethod: 'client_secret_post',
        },
        {
          key: 'production/api-fake-test.client',
          clientId: 'api-fake-test.client',
          environment: 'production',
          secretSource: { kind: 'env', name: 'CAS_SECRET_FAKE_TEST' },
          scope: undefined,
          authMethod: 'client_secret_basic',
        },
      ],
      callers: [
        {
          name: 'deals-service',
          keyDigests: [Buffer.from(DIGEST_A, 'hex'), Buffer.from(DIGEST_B, 'hex')],
          inlineKeyDigests: [Buffer.from(DIGEST_A, 'hex'), Buffer.from(DIGEST_B, 'hex')],
          clients: [{ kind: 'client', clientId: 'api-fake-test.client' }],
          admin: false,
        },
        {
          name: 'ops',
          keyDigests: [Buffer.from(DIGEST_C, 'hex')],
          inlineKeyDigests: [Buffer.from(DIGEST_C, 'hex')],
          clients: [
            { kind: 'any' },
            { kind: 'environment-client', environment: 'uat', clientId: 'api-fake-test.client' },
          ],
          admin: true,
        },
      ],
      callerIssuers: [],
      refresh: { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
    });
  });

  it.each([
    ['absent', undefined, { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 }],
    ['empty', {}, { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 }],
    [
      'ratio only',
      { ratio: 0.5 },
      { ratio: 0.5, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
    ],
    [
      'both',
      { ratio: 0.9, minTtlSeconds: 0 },
      { ratio: 0.9, minTtlSeconds: 0, minRejectionIntervalSeconds: 30 },
    ],
    [
      'a rejection interval',
      { minRejectionIntervalSeconds: 5 },
      { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 5 },
    ],
  ])('applies the refresh defaults when refresh is %s', (_name, refresh, expected) => {
    const sut = parse(withChange((c) => (c.refresh = refresh)));

    expect(sut.refresh).toEqual(expected);
  });

  it.each([
    ['relative', 'secrets/x', '/etc/token-vendor/secrets/x'],
    ['dot-relative', './x', '/etc/token-vendor/x'],
    ['parent-relative', '../shared/x', '/etc/shared/x'],
    ['absolute', '/var/run/secrets/cas/x', '/var/run/secrets/cas/x'],
  ])('resolves secretFile (%s) against the base directory', (_name, secretFile, expected) => {
    const sut = parse(withChange((c) => (c.clients[0].secretFile = secretFile)));

    expect(sut.clients[0].secretSource).toEqual({ kind: 'file', path: expected });
  });

  it.each<[string, (c: Raw) => void, string[]]>([
    [
      'neither secretFile nor secretEnv',
      (c) => delete c.clients[0].secretFile,
      ['clients[0].secretFile: exactly one of secretFile or secretEnv is required'],
    ],
    [
      'both secretFile and secretEnv',
      (c) => (c.clients[0].secretEnv = 'ALSO_SET'),
      ['clients[0].secretFile: exactly one of secretFile or secretEnv is required'],
    ],
    [
      'inline secret beside secretFile',
      (c) => (c.clients[0].secret = SECRET_VALUE),
      ['clients[0].secret: secrets are never written inline; use secretFile or secretEnv'],
    ],
    [
      'inline secret instead of secretFile',
      (c) => {
        delete c.clients[0].secretFile;
        c.clients[0].secret = SECRET_VALUE;
      },
      [
        'clients[0].secret: secrets are never written inline; use secretFile or secretEnv',
        'clients[0].secretFile: exactly one of secretFile or secretEnv is required',
      ],
    ],
    [
      'inline clientSecret',
      (c) => (c.clients[1].clientSecret = SECRET_VALUE),
      ['clients[1].clientSecret: secrets are never written inline; use secretFile or secretEnv'],
    ],
    [
      'inline client_secret',
      (c) => (c.clients[0].client_secret = SECRET_VALUE),
      ['clients[0].client_secret: secrets are never written inline; use secretFile or secretEnv'],
    ],
    [
      'inline password beside an unknown field',
      (c) => Object.assign(c.clients[0], { password: SECRET_VALUE, colour: 'blue' }),
      [
        'clients[0].password: secrets are never written inline; use secretFile or secretEnv',
        'clients[0]: unknown field(s) colour',
      ],
    ],
    [
      'secretEnv that is not a variable name',
      (c) => (c.clients[1].secretEnv = 'CAS-SECRET'),
      ['clients[1].secretEnv: must be an environment variable name'],
    ],
    [
      'unknown environment reference',
      (c) => (c.clients[1].environment = 'staging'),
      ['clients[1].environment: "staging" is not under environments'],
    ],
    [
      'duplicate client',
      (c) => c.clients.push({ ...c.clients[0] }),
      ['clients[2].clientId: uat/api-fake-test.client is listed twice'],
    ],
    [
      'malformed clientId',
      (c) => (c.clients[0].clientId = 'api/fake'),
      ['clients[0].clientId: must match /^[A-Za-z0-9._~:@+-]{1,200}$/'],
    ],
    [
      'ftp:// tokenUrl',
      (c) => (c.environments.uat.tokenUrl = 'ftp://identity.example/connect/token'),
      ['environments.uat.tokenUrl: must be an http(s) URL'],
    ],
    [
      'tokenUrl that is not a URL',
      (c) => (c.environments.uat.tokenUrl = 'identity.example/connect/token'),
      ['environments.uat.tokenUrl: must be an http(s) URL'],
    ],
    [
      'timeoutMs 50',
      (c) => (c.environments.production.timeoutMs = 50),
      ['environments.production.timeoutMs: Too small: expected number to be >=100'],
    ],
    [
      'timeoutMs not an integer',
      (c) => (c.environments.production.timeoutMs = 1500.5),
      ['environments.production.timeoutMs: Invalid input: expected int, received number'],
    ],
    [
      'no environments',
      (c) => (c.environments = {}),
      [
        'environments: at least one environment is required',
        // The clients' references are checked in the same pass, so they are listed too.
        'clients[0].environment: "uat" is not under environments',
        'clients[1].environment: "production" is not under environments',
      ],
    ],
    [
      'scope with a double space',
      (c) => (c.clients[0].scope = 'deals-read  permissions-read'),
      ['clients[0].scope: must be space-separated scope tokens (RFC 6749 §3.3)'],
    ],
    [
      'scope with a quote',
      (c) => (c.clients[0].scope = 'deals"read'),
      ['clients[0].scope: must be space-separated scope tokens (RFC 6749 §3.3)'],
    ],
    [
      'authMethod private_key_jwt with a secret instead of a key',
      (c) => (c.clients[0].authMethod = 'private_key_jwt'),
      [
        'clients[0].secretFile: not used with authMethod private_key_jwt',
        'clients[0].privateKeyFile: required with authMethod private_key_jwt',
      ],
    ],
    [
      'keySha256 not hex',
      (c) => (c.callers[0].keySha256 = [DIGEST_A, 'z'.repeat(64)]),
      ['callers[0].keySha256[1]: must be 64 hex characters (a SHA-256 digest)'],
    ],
    [
      'keySha256 too short',
      (c) => (c.callers[1].keySha256 = DIGEST_C.slice(1)),
      ['callers[1].keySha256[0]: must be 64 hex characters (a SHA-256 digest)'],
    ],
    [
      'keySha256 empty list',
      (c) => (c.callers[0].keySha256 = []),
      ['callers[0].keySha256: at least one key digest is required'],
    ],
    [
      'the same key for two callers (case-insensitive)',
      (c) => (c.callers[1].keySha256 = [DIGEST_A.toUpperCase()]),
      ['callers[1].keySha256[0]: the same key is already given to deals-service'],
    ],
    [
      'duplicate caller name',
      (c) => (c.callers[1].name = 'deals-service'),
      ['callers[1].name: "deals-service" is listed twice'],
    ],
    [
      'ACL client id matching nothing',
      (c) => (c.callers[0].clients = ['other.client']),
      ['callers[0].clients[0]: "other.client" matches no configured client'],
    ],
    [
      'ACL env/client matching nothing',
      (c) => (c.callers[1].clients = ['*', 'staging/api-fake-test.client']),
      ['callers[1].clients[1]: "staging/api-fake-test.client" matches no configured client'],
    ],
    [
      'ACL entry with two slashes',
      (c) => (c.callers[0].clients = ['uat/api/fake']),
      ['callers[0].clients[0]: "uat/api/fake" is not "environment/clientId"'],
    ],
    [
      'ACL entry with an empty environment',
      (c) => (c.callers[0].clients = ['/api-fake-test.client']),
      ['callers[0].clients[0]: "/api-fake-test.client" is not "environment/clientId"'],
    ],
    [
      'ACL entry that is not a client id',
      (c) => (c.callers[0].clients = ['api fake']),
      ['callers[0].clients[0]: "api fake" is not a client id'],
    ],
    [
      'ratio 0',
      (c) => (c.refresh = { ratio: 0 }),
      ['refresh.ratio: Too small: expected number to be >0'],
    ],
    [
      'ratio 1',
      (c) => (c.refresh = { ratio: 1 }),
      ['refresh.ratio: Too big: expected number to be <1'],
    ],
    [
      'ratio 1.5',
      (c) => (c.refresh = { ratio: 1.5 }),
      ['refresh.ratio: Too big: expected number to be <1'],
    ],
    [
      'minTtlSeconds -1',
      (c) => (c.refresh = { minTtlSeconds: -1 }),
      ['refresh.minTtlSeconds: Too small: expected number to be >=0'],
    ],
    [
      'minRejectionIntervalSeconds 0',
      (c) => (c.refresh = { minRejectionIntervalSeconds: 0 }),
      ['refresh.minRejectionIntervalSeconds: Too small: expected number to be >=1'],
    ],
    [
      'unknown refresh field',
      (c) => (c.refresh = { jitter: 0.1 }),
      ['refresh: unknown field(s) jitter'],
    ],
    ['unknown top-level field', (c) => (c.extra = true), ['(top level): unknown field(s) extra']],
    [
      'unknown caller field',
      (c) => (c.callers[0].key = SECRET_VALUE),
      ['callers[0]: unknown field(s) key'],
    ],
  ])('rejects %s, naming the field', (_name, change, problems) => {
    const err = configErrorOf(withChange(change));

    expect(err.problems).toEqual(problems);
    expect(err.source).toBe('test.yaml');
    expect(err.message).toBe(
      `Invalid configuration (test.yaml):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    expect(err.message).not.toContain(SECRET_VALUE);
  });

  it.each([
    ['not YAML', 'environments: [\n', ['not valid YAML (line 2)']],
    [
      'not YAML, with a secret on the broken line',
      `clients:\n  - clientId: a\n    secret: "${SECRET_VALUE}\n`,
      ['not valid YAML (line 4)'],
    ],
    ['a YAML list', '- uat\n- production\n', ['the file must hold a YAML mapping']],
    ['a YAML scalar', 'hello\n', ['the file must hold a YAML mapping']],
    ['empty', '', ['the file must hold a YAML mapping']],
    ['a duplicate key', 'environments: {}\nenvironments: {}\n', ['not valid YAML (line 2)']],
  ])('rejects a file that is %s', (_name, text, problems) => {
    const err = configErrorOf(text);

    expect(err.problems).toEqual(problems);
    expect(err.message).not.toContain(SECRET_VALUE);
  });

  it('lists every problem of a file with several in one ConfigError', () => {
    const raw = withChange((c) => {
      c.environments.uat.timeoutMs = 50;
      c.environments.production.tokenUrl = 'ftp://identity.example/token';
      c.clients[0].secret = SECRET_VALUE;
      c.clients[0].scope = 'a  b';
      c.clients[0].authMethod = 'client_secret_jwt';
      delete c.clients[1].secretEnv;
      c.callers[0].keySha256 = ['abc'];
      c.refresh = { ratio: 1.5, minTtlSeconds: -1 };
      c.colour = 'blue';
    });

    const err = configErrorOf(raw);

    expect(err.problems).toEqual([
      'clients[0].secret: secrets are never written inline; use secretFile or secretEnv',
      'clients[1].secretFile: exactly one of secretFile or secretEnv is required',
      'environments.uat.timeoutMs: Too small: expected number to be >=100',
      'environments.production.tokenUrl: must be an http(s) URL',
      'clients[0].scope: must be space-separated scope tokens (RFC 6749 §3.3)',
      'clients[0].authMethod: Invalid option: expected one of "client_secret_post"|"client_secret_basic"|"private_key_jwt"|"tls_client_auth"|"self_signed_tls_client_auth"',
      'callers[0].keySha256[0]: must be 64 hex characters (a SHA-256 digest)',
      'refresh.ratio: Too big: expected number to be <1',
      'refresh.minTtlSeconds: Too small: expected number to be >=0',
      '(top level): unknown field(s) colour',
    ]);
    expect(err.message).not.toContain(SECRET_VALUE);
  });

  it('lists every cross-reference problem together', () => {
    const raw = withChange((c) => {
      c.clients[1].environment = 'staging';
      c.clients.push({ ...c.clients[0] });
      c.callers[1].keySha256 = [DIGEST_B];
      c.callers[0].clients = ['nothing.client', 'uat/a/b'];
    });

    const err = configErrorOf(raw);

    expect(err.problems).toEqual([
      'clients[1].environment: "staging" is not under environments',
      'clients[2].clientId: uat/api-fake-test.client is listed twice',
      'callers[0].clients[0]: "nothing.client" matches no configured client',
      'callers[0].clients[1]: "uat/a/b" is not "environment/clientId"',
      'callers[1].keySha256[0]: the same key is already given to deals-service',
    ]);
  });
});

describe('loadServiceConfigFile', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'service-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves a relative secretFile against the folder of the configuration file', () => {
    const path = join(dir, 'token-vendor.yaml');
    writeFileSync(path, stringify(fullConfig()));

    const sut = loadServiceConfigFile(path);

    expect(sut.clients[0].secretSource).toEqual({
      kind: 'file',
      path: join(dir, 'secrets/api-fake-test.client'),
    });
  });

  it('names the file it cannot read', () => {
    const path = join(dir, 'missing.yaml');

    expect(() => loadServiceConfigFile(path)).toThrow(
      new ConfigError(path, ['cannot read the configuration file: ENOENT']),
    );
  });
});

describe('parseServiceConfig: fixes found in review', () => {
  it('refuses a tokenUrl carrying credentials, without quoting them', () => {
    const err = configErrorOf(
      withChange(
        (c) =>
          (c.environments.uat.tokenUrl = 'https://user:pw-canary@identity.example/connect/token'),
      ),
    );
    expect(err.problems).toEqual(['environments.uat.tokenUrl: must not hold credentials']);
    expect(err.message).not.toContain('pw-canary');
  });

  it('lists cross-reference problems together with schema problems', () => {
    const err = configErrorOf(
      withChange((c) => {
        c.environments.uat.timeoutMs = 50;
        c.clients[1].environment = 'staging';
      }),
    );
    expect(err.problems).toEqual([
      'environments.uat.timeoutMs: Too small: expected number to be >=100',
      'clients[1].environment: "staging" is not under environments',
    ]);
  });

  it('reports a missing secret source even when another field of the client is bad', () => {
    const err = configErrorOf(
      withChange((c) => {
        c.clients[0].authMethod = 'client_secret_jwt';
        delete c.clients[0].secretFile;
      }),
    );
    expect(err.problems).toEqual([
      'clients[0].secretFile: exactly one of secretFile or secretEnv is required',
      'clients[0].authMethod: Invalid option: expected one of "client_secret_post"|"client_secret_basic"|"private_key_jwt"|"tls_client_auth"|"self_signed_tls_client_auth"',
    ]);
  });
});

describe('parseServiceConfig: callerIssuers and workload callers', () => {
  const ISSUER = 'https://kubernetes.default.svc.cluster.local';
  const base = (
    callerIssuers: Record<string, unknown>[],
    callers: Record<string, unknown>[],
  ): string =>
    stringify({
      environments: { uat: { tokenUrl: 'https://idp.example/connect/token' } },
      clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
      callerIssuers,
      callers,
    });
  const cluster = { name: 'cluster', issuer: ISSUER, audience: 'token-vendor' };
  const deals = {
    name: 'deals',
    kubernetes: { issuer: 'cluster', namespace: 'deals', serviceAccount: 'deals-api' },
    clients: ['a.client'],
  };

  it('reads issuers and the workload each caller is', () => {
    const sut = parseServiceConfig(
      base(
        [
          cluster,
          {
            name: 'ci',
            issuer: 'ci-issuer',
            jwksUri: 'http://127.0.0.1:8080/jwks',
            audience: 'tv',
          },
        ],
        [
          deals,
          { name: 'batch', jwt: { issuer: 'ci', subject: 'repo:org/batch:ref:refs/heads/main' } },
        ],
      ),
      'test.yaml',
    );

    expect(sut.callerIssuers).toEqual([
      { name: 'cluster', issuer: ISSUER, audience: 'token-vendor' },
      { name: 'ci', issuer: 'ci-issuer', jwksUri: 'http://127.0.0.1:8080/jwks', audience: 'tv' },
    ]);
    expect(sut.callers.map((c) => [c.name, c.workload, c.keyDigests.length])).toEqual([
      [
        'deals',
        { kind: 'kubernetes', issuer: 'cluster', namespace: 'deals', serviceAccount: 'deals-api' },
        0,
      ],
      ['batch', { kind: 'jwt', issuer: 'ci', subject: 'repo:org/batch:ref:refs/heads/main' }, 0],
    ]);
  });

  it.each([
    ['user and password', 'https://reader:pw-canary@cluster.example'],
    ['a user only', 'https://pw-canary@cluster.example'],
  ])('refuses an issuer URL carrying credentials (%s), without quoting them', (_n, issuer) => {
    const issuers = [
      { ...cluster, issuer },
      { ...cluster, name: 'again', issuer, jwksUri: 'https://cluster.example/jwks' },
    ];
    let err: unknown;
    try {
      parseServiceConfig(base(issuers, [deals]), 'test.yaml');
    } catch (e) {
      err = e;
    }

    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'callerIssuers[0].issuer: must not hold credentials',
      'callerIssuers[1].issuer: must not hold credentials',
    ]);
    expect((err as ConfigError).message).not.toContain('pw-canary');
  });

  it.each([
    [
      'a caller naming an issuer nobody configured',
      [cluster],
      [{ ...deals, kubernetes: { ...deals.kubernetes, issuer: 'other' } }],
      ['callers[0].kubernetes.issuer: "other" is not under callerIssuers'],
    ],
    [
      'one workload given to two callers',
      [cluster],
      [deals, { ...deals, name: 'deals-too' }],
      ['callers[1].kubernetes: the same workload is already deals'],
    ],
    [
      'both kubernetes and jwt',
      [cluster],
      [{ ...deals, jwt: { issuer: 'cluster', subject: 'x' } }],
      ['callers[0].jwt: a caller is one workload: give kubernetes or jwt, not both'],
    ],
    [
      'a JWKS over plain http to another host',
      [{ ...cluster, jwksUri: 'http://kubernetes.default.svc/openid/v1/jwks' }],
      [deals],
      ['callerIssuers[0].jwksUri: must be an https URL (http only for a loopback host)'],
    ],
    [
      'no jwksUri and an issuer discovery cannot start from',
      [{ ...cluster, issuer: 'kubernetes' }],
      [deals],
      [
        'callerIssuers[0].jwksUri: required when the issuer is not an https URL to discover it from',
      ],
    ],
    [
      'an issuer listed twice',
      [cluster, { ...cluster, name: 'again' }],
      [deals],
      [`callerIssuers[1].issuer: "${ISSUER}" is listed twice`],
    ],
    [
      'a namespace that is not a Kubernetes name',
      [cluster],
      [{ ...deals, kubernetes: { ...deals.kubernetes, namespace: 'Deals!' } }],
      ['callers[0].kubernetes.namespace: must be a Kubernetes namespace name'],
    ],
  ])('refuses %s, naming the field', (_name, issuers, callers, problems) => {
    expect(() => parseServiceConfig(base(issuers, callers), 'test.yaml')).toThrow(
      new ConfigError('test.yaml', problems),
    );
  });
});

describe('one loopback rule for plain http:// (environments and caller issuers)', () => {
  it.each([
    ['http://127.0.0.1:8080/x', true],
    ['http://127.0.0.2:8080/x', true],
    ['http://127.255.255.254/x', true],
    ['http://localhost/x', true],
    ['http://LOCALHOST:9/x', true],
    ['http://jwks.localhost/x', true],
    ['http://[::1]:8080/x', true],
    ['http://[0:0:0:0:0:0:0:1]/x', true],
    ['http://127.0.0.1./x', true], // the URL parser drops an IPv4 address's trailing dot
    // IPv4-mapped IPv6 loopback, which the URL parser writes [::ffff:7f00:1].
    ['http://[::ffff:127.0.0.1]/x', true],
    ['http://[::ffff:7f00:1]:8080/x', true],
    ['http://[::FFFF:127.255.255.254]/x', true],
    ['http://[0:0:0:0:0:ffff:7f01:203]/x', true],
    ['http://128.0.0.1/x', false],
    ['http://127.0.0.1.example.com/x', false],
    ['http://localhost.example.com/x', false],
    // Not loopback: looked up in DNS (glibc reads /etc/hosts for `localhost` only).
    ['http://localhost./x', false],
    ['http://LOCALHOST.:9/x', false],
    ['http://jwks.localhost./x', false],
    ['http://[::ffff:10.0.0.1]/x', false],
    ['http://[::ffff:128.0.0.1]/x', false],
    ['http://[::ffff:7eff:ffff]/x', false], // 126.255.255.255
    ['http://[::127.0.0.1]/x', false], // IPv4-compatible (deprecated), not mapped
    ['http://[::ffff:0:127.0.0.1]/x', false], // IPv4-translated (SIIT)
    ['http://[64:ff9b::127.0.0.1]/x', false], // NAT64: leaves through the translator
    ['http://[::2]/x', false],
    ['http://kubernetes.default.svc/x', false],
  ])('%s is loopback: %s', (url, loopback) => {
    expect(isKeySourceUrl(url)).toBe(loopback);
    expect(insecureHttp(url, false)).toBe(!loopback);
  });

  it.each([
    ['::ffff:127.0.0.1', true],
    ['[::ffff:127.0.0.1]', true],
    ['::ffff:7f00:1', true],
    ['0:0:0:0:0:FFFF:7F00:0001', true],
    ['::1', true],
    ['LOCALHOST', true],
    ['api.localhost', true],
    ['127.10.20.30', true],
    ['localhost.', false],
    ['::ffff:10.0.0.1', false],
    ['::ffff:a00:1', false],
    ['::ffff:8000:1', false],
    ['::1%lo', false],
    ['::1]/x[', false],
    ['127.0.0.1.example.com', false],
    ['localhost.example.com', false],
    ['', false],
  ])('isLoopbackHost(%p) is %s, in whatever notation it is written', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('https is a key source on any host; other schemes and non-URLs never', () => {
    expect(
      ['https://kubernetes.default.svc/x', 'ftp://127.0.0.1/x', 'not a url'].map(isKeySourceUrl),
    ).toEqual([true, false, false]);
  });

  it('accepts a caller-issuer jwksUri on any loopback name the environments accept', () => {
    const sut = parseServiceConfig(
      stringify({
        environments: { uat: { tokenUrl: 'http://127.0.0.2:8080/token' } },
        clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
        callerIssuers: [
          { name: 'a', issuer: 'a', jwksUri: 'http://127.0.0.2:8080/jwks', audience: 'tv' },
          { name: 'b', issuer: 'b', jwksUri: 'http://jwks.localhost:8080/jwks', audience: 'tv' },
        ],
      }),
      'test.yaml',
    );
    expect(sut.callerIssuers.map((i) => i.jwksUri)).toEqual([
      'http://127.0.0.2:8080/jwks',
      'http://jwks.localhost:8080/jwks',
    ]);
  });
});
