import { Logger } from '@nestjs/common';

import {
  ConfigService,
  parseServiceConfig,
  type ClientConfig,
  type EnvironmentConfig,
  type RuntimeSettings,
} from '@app/config';
import {
  LocalFleetChannel,
  MemoryTokenStore,
  StoreUnavailableError,
  tokenSha256,
  type FleetChannel,
  type StoredToken,
} from '@app/token-store';
import { RECHECK_TRUST_MS, TokenCache } from './token-cache';
import { tokenRequestShape } from './token-request-shape';
import { TestClock } from '../../../test/support/clock';

const CONFIG_YAML = `
environments:
  uat:
    tokenUrl: https://idp.example.test/connect/token
clients:
  - clientId: api.client
    environment: uat
    secretEnv: API_SECRET
    scope: deals-read deals-write
`;
const RUNTIME: RuntimeSettings = {
  port: 0,
  host: '127.0.0.1',
  configPath: 'test.yaml',
  keyPrefix: 'test:',
  encryptionKeys: [],
  logLevel: 'silent',
  metricsPort: 0,
  trustedProxies: [],
};

/** A fleet channel whose confirmation and monotonic time the test sets. */
class TestChannel extends LocalFleetChannel implements FleetChannel {
  now = 1_000;
  /** Confirmed without a gap since this monotonic time (Infinity: not confirmed now). */
  confirmedFrom = 0;
  override monotonicNow(): number {
    return this.now;
  }
  override confirmedSince(since: number): boolean {
    return since >= this.confirmedFrom;
  }
}

/** A store whose marker reads are counted, and can fail. */
class CountingStore extends MemoryTokenStore {
  revokedChecks = 0;
  failing = false;
  override isRevoked(ref: Parameters<MemoryTokenStore['isRevoked']>[0], sha: string) {
    this.revokedChecks++;
    if (this.failing) return Promise.reject(new StoreUnavailableError('redis: down'));
    return super.isRevoked(ref, sha);
  }
}

describe('TokenCache', () => {
  let clock: TestClock;
  let store: CountingStore;
  let channel: TestChannel;
  let config: ConfigService;
  let client: ClientConfig;
  let sut: TokenCache;

  const tokenOf = (name: string, lifeMs = 1_200_000): StoredToken => ({
    accessToken: name,
    tokenType: 'Bearer',
    requestedAt: clock.now(),
    expiresAt: clock.now() + lifeMs,
  });

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    clock = new TestClock();
    store = new CountingStore(clock);
    channel = new TestChannel();
    const service = parseServiceConfig(CONFIG_YAML, 'test.yaml');
    client = service.clients[0];
    config = new ConfigService(RUNTIME, { service, secrets: new Map([[client.key, 's']]) });
    sut = new TokenCache(store, channel, config, clock);
  });

  afterEach(() => jest.restoreAllMocks());

  it('serves its copy with no store round trip while the fleet channel stays confirmed', async () => {
    const token = tokenOf('own');
    await sut.save(client, token);
    channel.now += 60_000;
    expect(sut.local(client)).toBe(token);
    await expect(sut.verified(client)).resolves.toBe(token);
    expect(store.revokedChecks).toBe(0);
  });

  it('after a gap in the channel (a pause, a lost connection) checks the durable marker before serving, and drops a revoked copy', async () => {
    const token = tokenOf('own');
    await sut.save(client, token);
    // Revoked by another replica while this one missed the message.
    await store.revoke(client, tokenSha256(token.accessToken), token.expiresAt);
    channel.now += 2_000;
    channel.confirmedFrom = channel.now; // the channel came back: messages may have been lost

    expect(sut.local(client)).toBeUndefined(); // not served on the hot path
    await expect(sut.verified(client)).resolves.toBeUndefined();
    expect(store.revokedChecks).toBe(1);
    expect(sut.held(client)).toBeUndefined();
  });

  it('after a gap, a copy that was not revoked is served and trusted again for a while (one marker read)', async () => {
    const token = tokenOf('own');
    await sut.save(client, token);
    channel.now += 2_000;
    channel.confirmedFrom = Number.POSITIVE_INFINITY; // still not confirmed
    await expect(sut.verified(client)).resolves.toBe(token);
    expect(sut.local(client)).toBe(token);
    await expect(Promise.all([sut.verified(client), sut.verified(client)])).resolves.toEqual([
      token,
      token,
    ]);
    expect(store.revokedChecks).toBe(1);
    channel.now += RECHECK_TRUST_MS + 1;
    expect(sut.local(client)).toBeUndefined();
  });

  it('while the store is down, serves its copy without waiting on the marker (the outage rule)', async () => {
    const token = tokenOf('own');
    await sut.save(client, token);
    channel.now += 2_000;
    channel.confirmedFrom = Number.POSITIVE_INFINITY;
    store.failing = true;
    await expect(sut.verified(client)).resolves.toBe(token); // the read failed: outage
    expect(sut.storeAvailable).toBe(false);
    await expect(sut.verified(client)).resolves.toBe(token); // served, probe throttled
    expect(store.revokedChecks).toBe(1);
  });

  it('drops a copy the fleet revoked and refuses to adopt it again', async () => {
    const token = tokenOf('own');
    await sut.save(client, token);
    expect(sut.revokeLocally(client.key, tokenSha256('own'), token.expiresAt)).toBe(true);
    expect(sut.held(client)).toBeUndefined();
    await store.delete(sut.refOf(client));
    await sut.save(client, token);
    expect(sut.held(client)).toBeUndefined();
  });

  it('keeps the later token, and never serves a copy of another configuration', async () => {
    const later = tokenOf('later', 1_200_000);
    await sut.save(client, later);
    await sut.save(client, tokenOf('earlier', 600_000));
    expect(sut.local(client)).toBe(later);

    const narrowed = { ...client, scope: 'deals-read' };
    expect(sut.shapeOf(narrowed)).not.toBe(sut.shapeOf(client));
    expect(sut.local(narrowed)).toBeUndefined();
    await expect(sut.shared(narrowed)).resolves.toBeUndefined();
  });
});

describe('tokenRequestShape', () => {
  const environment: EnvironmentConfig = {
    name: 'uat',
    tokenUrl: 'https://idp.example.test/token',
    timeoutMs: 1000,
    allowInsecureHttp: false,
  };
  const base: ClientConfig = {
    key: 'uat/api.client',
    clientId: 'api.client',
    environment: 'uat',
    secretSource: { kind: 'env', name: 'X' },
    scope: 'a b',
    authMethod: 'client_secret_post',
  };

  it.each<[string, Partial<ClientConfig>, Partial<EnvironmentConfig>]>([
    ['scope', { scope: 'a' }, {}],
    ['no scope', { scope: undefined }, {}],
    ['auth method', { authMethod: 'client_secret_basic' }, {}],
    ['client id', { clientId: 'other.client' }, {}],
    ['environment', { environment: 'prod' }, {}],
    ['token URL', {}, { tokenUrl: 'https://idp.example.test/other' }],
    ['issuer (discovery)', {}, { tokenUrl: undefined, issuer: 'https://idp.example.test' }],
    ['audience', { audience: 'https://api.example.test' }, {}],
    ['resource', { resources: ['https://api.example.test'] }, {}],
    ['extra parameters', { extraParams: new Map([['organization', 'org_1']]) }, {}],
    ['key id', { keyId: 'k2' }, {}],
    ['certificate named in the assertion', { assertionCertificate: true }, {}],
  ])('changes with the %s', (_field, client, env) => {
    expect(tokenRequestShape({ ...base, ...client }, { ...environment, ...env })).not.toBe(
      tokenRequestShape(base, environment),
    );
  });

  it('does not change with the secret source or the timeout; is 16 hex', () => {
    const shape = tokenRequestShape(base, environment);
    expect(shape).toMatch(/^[0-9a-f]{16}$/);
    expect(
      tokenRequestShape(
        { ...base, secretSource: { kind: 'file', path: '/x' } },
        { ...environment, timeoutMs: 5 },
      ),
    ).toBe(shape);
  });
});
