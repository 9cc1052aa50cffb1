import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config.error';
import { DEFAULT_KEY_PREFIX, loadRuntimeSettings } from './runtime-settings.loader';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

const CONFIG = { TOKEN_VENDOR_CONFIG: '/etc/token-vendor/config.yaml' };
const KEY_NEW = Buffer.alloc(32, 7);
const KEY_OLD = Buffer.alloc(32, 1);
const KEYS = `new:${KEY_NEW.toString('base64')}`;
const REDIS_PASSWORD = 'r3dis-pa55word';

function problemsOf(env: NodeJS.ProcessEnv, defaults: { configPath?: string } = {}): ConfigError {
  try {
    loadRuntimeSettings(env, defaults);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('loadRuntimeSettings', () => {
  it('applies the README "Environment" defaults', () => {
    const sut = loadRuntimeSettings({ ...CONFIG });

    expect(sut).toEqual({
      port: 3000,
      host: '0.0.0.0',
      configPath: '/etc/token-vendor/config.yaml',
      redis: undefined,
      keyPrefix: 'token-vendor:',
      encryptionKeys: [],
      logLevel: 'info',
      metricsPort: 9464,
      trustedProxies: [],
    });
    expect(DEFAULT_KEY_PREFIX).toBe('token-vendor:');
  });

  it('takes the configuration path from the caller default when the variable is unset', () => {
    const sut = loadRuntimeSettings({}, { configPath: 'config/demo.yaml' });

    expect(sut.configPath).toBe('config/demo.yaml');
  });

  it('reads every variable of a full standalone setup', () => {
    const sut = loadRuntimeSettings({
      ...CONFIG,
      PORT: '8080',
      HOST: '127.0.0.1',
      REDIS_URL: `rediss://:${REDIS_PASSWORD}@redis.internal:6380/2`,
      REDIS_KEY_PREFIX: 'tv-prod:',
      TOKEN_VENDOR_ENCRYPTION_KEYS: `new:${KEY_NEW.toString('base64')}, old:${KEY_OLD.toString('base64')}`,
      LOG_LEVEL: 'DEBUG',
    });

    expect(sut).toEqual({
      port: 8080,
      host: '127.0.0.1',
      configPath: '/etc/token-vendor/config.yaml',
      redis: {
        mode: 'standalone',
        url: `rediss://:${REDIS_PASSWORD}@redis.internal:6380/2`,
        connection: {},
      },
      keyPrefix: 'tv-prod:',
      encryptionKeys: [
        { kid: 'new', key: KEY_NEW },
        { kid: 'old', key: KEY_OLD },
      ],
      logLevel: 'debug',
      metricsPort: 9464,
      trustedProxies: [],
    });
  });

  it.each([
    [
      'sentinel',
      { REDIS_SENTINELS: 's1:26379, s2:26379', REDIS_SENTINEL_NAME: 'mymaster' },
      {
        mode: 'sentinel',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26379 },
        ],
        name: 'mymaster',
        connection: {},
      },
    ],
    [
      'cluster',
      { REDIS_CLUSTER_NODES: 'n1:7000,[::1]:7001' },
      {
        mode: 'cluster',
        nodes: [
          { host: 'n1', port: 7000 },
          { host: '::1', port: 7001 },
        ],
        connection: {},
      },
    ],
  ])('reads the %s Redis mode', (_name, env, expected) => {
    const sut = loadRuntimeSettings({ ...CONFIG, ...env, TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS });

    expect(sut.redis).toEqual(expected);
  });

  it.each<[string, NodeJS.ProcessEnv, string[]]>([
    ['PORT above 65535', { PORT: '70000' }, ['PORT: must be an integer from 0 to 65535']],
    ['PORT not a number', { PORT: 'http' }, ['PORT: must be an integer from 0 to 65535']],
    ['PORT negative', { PORT: '-1' }, ['PORT: must be an integer from 0 to 65535']],
    [
      'TOKEN_VENDOR_CONFIG missing',
      { TOKEN_VENDOR_CONFIG: undefined },
      ['TOKEN_VENDOR_CONFIG: required (path of the YAML configuration)'],
    ],
    [
      'TOKEN_VENDOR_CONFIG blank',
      { TOKEN_VENDOR_CONFIG: '  ' },
      ['TOKEN_VENDOR_CONFIG: required (path of the YAML configuration)'],
    ],
    [
      'REDIS_URL http://',
      { REDIS_URL: `http://:${REDIS_PASSWORD}@redis:6379`, TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS },
      ['REDIS_URL: must be a redis:// or rediss:// URL'],
    ],
    [
      'REDIS_URL not a URL',
      { REDIS_URL: `${REDIS_PASSWORD}@redis:6379`, TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS },
      ['REDIS_URL: must be a redis:// or rediss:// URL'],
    ],
    [
      'REDIS_URL and REDIS_SENTINELS at once',
      {
        REDIS_URL: `redis://:${REDIS_PASSWORD}@redis:6379`,
        REDIS_SENTINELS: 's1:26379',
        REDIS_SENTINEL_NAME: 'mymaster',
        TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS,
      },
      ['REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set only one of them'],
    ],
    [
      'REDIS_SENTINELS and REDIS_CLUSTER_NODES at once',
      {
        REDIS_SENTINELS: 's1:26379',
        REDIS_CLUSTER_NODES: 'n1:7000',
        TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS,
      },
      ['REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set only one of them'],
    ],
    [
      'REDIS_SENTINELS without REDIS_SENTINEL_NAME',
      { REDIS_SENTINELS: 's1:26379', TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS },
      ['REDIS_SENTINEL_NAME: required with REDIS_SENTINELS'],
    ],
    [
      'REDIS_SENTINELS entry without a port',
      {
        REDIS_SENTINELS: 's1:26379,s2',
        REDIS_SENTINEL_NAME: 'm',
        TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS,
      },
      ['REDIS_SENTINELS[1]: is not host:port'],
    ],
    [
      'REDIS_CLUSTER_NODES with port 0, port 70000 and an empty entry',
      { REDIS_CLUSTER_NODES: 'n1:0,n2:70000,,n3:7000', TOKEN_VENDOR_ENCRYPTION_KEYS: KEYS },
      [
        'REDIS_CLUSTER_NODES[0]: is not host:port',
        'REDIS_CLUSTER_NODES[1]: is not host:port',
        'REDIS_CLUSTER_NODES[2]: is not host:port',
      ],
    ],
    [
      'REDIS_KEY_PREFIX with braces',
      { REDIS_KEY_PREFIX: 'tv{prod}:' },
      ['REDIS_KEY_PREFIX: must not contain { or } (hash tags)'],
    ],
    [
      'REDIS_KEY_PREFIX with a space',
      { REDIS_KEY_PREFIX: 'token vendor:' },
      ['REDIS_KEY_PREFIX: at most 64 printable characters without spaces'],
    ],
    [
      'REDIS_KEY_PREFIX of 65 characters',
      { REDIS_KEY_PREFIX: 'x'.repeat(65) },
      ['REDIS_KEY_PREFIX: at most 64 printable characters without spaces'],
    ],
    [
      'an encryption key of 16 bytes',
      { TOKEN_VENDOR_ENCRYPTION_KEYS: `k1:${Buffer.alloc(16, 9).toString('base64')}` },
      ['TOKEN_VENDOR_ENCRYPTION_KEYS[0] (k1): the key must be 32 bytes in base64'],
    ],
    [
      'an encryption key that is not base64',
      { TOKEN_VENDOR_ENCRYPTION_KEYS: `${KEYS},k2:${'!'.repeat(44)}` },
      ['TOKEN_VENDOR_ENCRYPTION_KEYS[1] (k2): the key must be 32 bytes in base64'],
    ],
    [
      'an encryption key id with a space',
      { TOKEN_VENDOR_ENCRYPTION_KEYS: `bad kid:${KEY_NEW.toString('base64')}` },
      [
        'TOKEN_VENDOR_ENCRYPTION_KEYS[0]: needs a key id of 1-32 letters, digits, _ or - before ":"',
      ],
    ],
    [
      'an encryption key without a key id',
      { TOKEN_VENDOR_ENCRYPTION_KEYS: KEY_NEW.toString('base64') },
      [
        'TOKEN_VENDOR_ENCRYPTION_KEYS[0]: needs a key id of 1-32 letters, digits, _ or - before ":"',
      ],
    ],
    [
      'an encryption key id listed twice',
      {
        TOKEN_VENDOR_ENCRYPTION_KEYS: `new:${KEY_NEW.toString('base64')},new:${KEY_OLD.toString('base64')}`,
      },
      ['TOKEN_VENDOR_ENCRYPTION_KEYS[1]: key id new is listed twice'],
    ],
    [
      'Redis without TOKEN_VENDOR_ENCRYPTION_KEYS',
      { REDIS_URL: 'redis://redis:6379' },
      [
        'TOKEN_VENDOR_ENCRYPTION_KEYS: required whenever Redis is used (kid:base64-32-bytes[,kid:key...])',
      ],
    ],
    [
      'Redis Cluster with an empty TOKEN_VENDOR_ENCRYPTION_KEYS',
      { REDIS_CLUSTER_NODES: 'n1:7000', TOKEN_VENDOR_ENCRYPTION_KEYS: ' ' },
      [
        'TOKEN_VENDOR_ENCRYPTION_KEYS: required whenever Redis is used (kid:base64-32-bytes[,kid:key...])',
      ],
    ],
    [
      'LOG_LEVEL verbose',
      { LOG_LEVEL: 'verbose' },
      ['LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent'],
    ],
    [
      'several variables at once',
      { PORT: 'x', TOKEN_VENDOR_CONFIG: undefined, REDIS_KEY_PREFIX: '{x}', LOG_LEVEL: 'loud' },
      [
        'PORT: must be an integer from 0 to 65535',
        'TOKEN_VENDOR_CONFIG: required (path of the YAML configuration)',
        'REDIS_KEY_PREFIX: must not contain { or } (hash tags)',
        'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent',
      ],
    ],
  ])('rejects %s, naming the variable', (_name, env, problems) => {
    const err = problemsOf({ ...CONFIG, ...env });

    expect(err.problems).toEqual(problems);
    expect(err.source).toBe('environment');
    expect(err.message).toBe(
      `Invalid configuration (environment):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  });

  it.each([
    ['a non-redis scheme', { REDIS_URL: `http://:${REDIS_PASSWORD}@redis:6379` }],
    [
      'a second Redis mode',
      { REDIS_URL: `redis://:${REDIS_PASSWORD}@r:6379`, REDIS_CLUSTER_NODES: 'n:1' },
    ],
    ['no encryption keys', { REDIS_URL: `redis://:${REDIS_PASSWORD}@redis:6379` }],
  ])('never quotes the REDIS_URL password (%s)', (_name, env) => {
    const err = problemsOf({ ...CONFIG, ...env });

    expect(err.message).not.toContain(REDIS_PASSWORD);
    expect(err.problems.join('\n')).not.toContain(REDIS_PASSWORD);
  });

  it('never quotes encryption key material', () => {
    const material = Buffer.alloc(31, 5).toString('base64');

    const err = problemsOf({ ...CONFIG, TOKEN_VENDOR_ENCRYPTION_KEYS: `k1:${material}` });

    expect(err.message).not.toContain(material);
  });
});

describe('loadRuntimeSettings: values that could be secret are never echoed', () => {
  it('names a bad sentinel entry by position, not by value (it may be a URL with a password)', () => {
    const err = (() => {
      try {
        loadRuntimeSettings({
          TOKEN_VENDOR_CONFIG: '/c.yaml',
          REDIS_SENTINELS: 'redis://:pw-canary@h:26379',
          REDIS_SENTINEL_NAME: 'm',
        });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err.problems).toContain('REDIS_SENTINELS[0]: is not host:port');
    expect(err.message).not.toContain('pw-canary');
  });

  it('still asks for encryption keys when the Redis setting itself is malformed', () => {
    expect(() =>
      loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: '/c.yaml', REDIS_URL: 'http://x' }),
    ).toThrow(/TOKEN_VENDOR_ENCRYPTION_KEYS: required whenever Redis is used/);
  });

  it('refuses key ids with "." (the stored value format separates parts with it)', () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    expect(() =>
      loadRuntimeSettings({
        TOKEN_VENDOR_CONFIG: '/c.yaml',
        TOKEN_VENDOR_ENCRYPTION_KEYS: `2026.11:${key}`,
      }),
    ).toThrow(
      'TOKEN_VENDOR_ENCRYPTION_KEYS[0]: needs a key id of 1-32 letters, digits, _ or - before ":"',
    );
  });
});

describe('loadRuntimeSettings: Redis AUTH and TLS', () => {
  let dir: string;
  let caFile: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'runtime-settings-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, signingCertificate({ kind: 'ec', cn: 'redis CA' }).cert);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads user, password, Sentinel credentials and TLS', () => {
    const sut = loadRuntimeSettings({
      TOKEN_VENDOR_CONFIG: '/c.yaml',
      REDIS_SENTINELS: 's1:26379',
      REDIS_SENTINEL_NAME: 'm',
      REDIS_USERNAME: 'vendor',
      REDIS_PASSWORD: 'pw',
      REDIS_SENTINEL_PASSWORD: 'spw',
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: caFile,
      TOKEN_VENDOR_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 2).toString('base64')}`,
    });
    expect(sut.redis?.connection).toEqual({
      username: 'vendor',
      password: 'pw',
      sentinelPassword: 'spw',
      tls: { caFile },
    });
  });

  it('stops the start on a REDIS_TLS_CA_FILE that cannot be read or holds no certificate', () => {
    const env = {
      TOKEN_VENDOR_CONFIG: '/c.yaml',
      REDIS_URL: 'rediss://r:6379',
      TOKEN_VENDOR_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 2).toString('base64')}`,
    };
    const absent = join(dir, 'absent.pem');
    expect(problemsOf({ ...env, REDIS_TLS_CA_FILE: absent }).problems).toEqual([
      `REDIS_TLS_CA_FILE: cannot read ${absent} (ENOENT)`,
    ]);
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    expect(problemsOf({ ...env, REDIS_TLS_CA_FILE: garbage }).problems).toEqual([
      `REDIS_TLS_CA_FILE: ${garbage} holds no PEM certificate`,
    ]);
  });

  it('reads a client certificate pair, which turns TLS on; half a pair or a mismatch stops the start', () => {
    const env = {
      TOKEN_VENDOR_CONFIG: '/c.yaml',
      REDIS_URL: 'redis://r:6379',
      TOKEN_VENDOR_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 2).toString('base64')}`,
    };
    const client = signingCertificate({ kind: 'ec', cn: 'redis client' });
    const other = signingCertificate({ kind: 'ec', cn: 'another client' });
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    const otherKeyFile = join(dir, 'other.key');
    writeFileSync(certFile, client.cert);
    writeFileSync(keyFile, client.key);
    writeFileSync(otherKeyFile, other.key);

    const sut = loadRuntimeSettings({
      ...env,
      REDIS_TLS_CERT_FILE: certFile,
      REDIS_TLS_KEY_FILE: keyFile,
    });
    expect(sut.redis?.connection?.tls).toEqual({ certFile, keyFile });
    expect(problemsOf({ ...env, REDIS_TLS_CERT_FILE: certFile }).problems).toEqual([
      'REDIS_TLS_KEY_FILE: required with REDIS_TLS_CERT_FILE (the client certificate’s key)',
    ]);
    expect(problemsOf({ ...env, REDIS_TLS_KEY_FILE: keyFile }).problems).toEqual([
      'REDIS_TLS_CERT_FILE: required with REDIS_TLS_KEY_FILE (the client certificate)',
    ]);
    const refused = problemsOf({
      ...env,
      REDIS_TLS_CERT_FILE: certFile,
      REDIS_TLS_KEY_FILE: otherKeyFile,
    });
    expect(refused.problems).toEqual([
      'REDIS_TLS_KEY_FILE: is not the key of the certificate in REDIS_TLS_CERT_FILE',
    ]);
    expect(refused.message).not.toContain(other.key.split('\n')[1]);
  });

  it('refuses a REDIS_TLS that is not true or false', () => {
    expect(() =>
      loadRuntimeSettings({
        TOKEN_VENDOR_CONFIG: '/c.yaml',
        REDIS_URL: 'redis://r:6379',
        REDIS_TLS: 'yes',
        TOKEN_VENDOR_ENCRYPTION_KEYS: `k:${Buffer.alloc(32, 2).toString('base64')}`,
      }),
    ).toThrow('REDIS_TLS: must be true or false');
  });
});

describe('loadRuntimeSettings: metrics port, trusted proxies, tracing', () => {
  it('reads METRICS_PORT, TRUSTED_PROXIES and the OTLP endpoint', () => {
    const sut = loadRuntimeSettings({
      ...CONFIG,
      METRICS_PORT: '9100',
      TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1 ,fd00::/8',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
    });

    expect(sut.metricsPort).toBe(9100);
    expect(sut.trustedProxies).toEqual(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);
    expect(sut.otlpTracesEndpoint).toBe('http://collector:4318/v1/traces');
  });

  it('takes OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, before the base endpoint', () => {
    const sut = loadRuntimeSettings({
      ...CONFIG,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp',
    });

    expect(sut.otlpTracesEndpoint).toBe('https://traces.example/otlp');
  });

  it('leaves tracing off when no endpoint is set', () => {
    expect(loadRuntimeSettings({ ...CONFIG }).otlpTracesEndpoint).toBeUndefined();
  });

  it('names every bad variable, never quoting an endpoint (it may carry credentials)', () => {
    const sut = problemsOf({
      ...CONFIG,
      PORT: '8080',
      METRICS_PORT: '8080',
      TRUSTED_PROXIES: '10.0.0.0/33,not-an-ip,10.1.0.0/8/1',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://user:hunter2@collector',
    });

    expect(sut.problems).toEqual([
      'METRICS_PORT: must differ from PORT (metrics are not served on the API port)',
      'TRUSTED_PROXIES[0]: is not an IP address or CIDR (e.g. 10.0.0.0/8)',
      'TRUSTED_PROXIES[1]: is not an IP address or CIDR (e.g. 10.0.0.0/8)',
      'TRUSTED_PROXIES[2]: is not an IP address or CIDR (e.g. 10.0.0.0/8)',
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL',
    ]);
    expect(sut.message).not.toContain('hunter2');
  });

  it('refuses a METRICS_PORT that is not a port', () => {
    expect(problemsOf({ ...CONFIG, METRICS_PORT: '70000' }).problems).toEqual([
      'METRICS_PORT: must be an integer from 0 to 65535',
    ]);
  });
});
