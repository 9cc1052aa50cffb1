import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { stringify } from 'yaml';
import { createHash } from 'node:crypto';
import type { Caller } from '@app/auth';
import { CLOCK } from '@app/clock';
import {
  ConfigService,
  loadRuntimeSettings,
  parseServiceConfig,
  type ClientConfig,
} from '@app/config';
import {
  InvalidRequestError,
  UnknownClientError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
} from '@app/errors';
import { AuditLog, DisclosureLog } from '@app/audit';
import { createAuditLogger, createRootLogger, tokenFingerprint } from '@app/observability';
import {
  FLEET_CHANNEL,
  LocalFleetChannel,
  MemoryTokenStore,
  REFRESH_LOCK,
  TOKEN_STORE,
} from '@app/token-store';
import { PeriodicTasks } from '@app/periodic';
import { OAuthClient, type IssuedToken, type TokenRequest } from '@app/upstream';
import { ClientResolver } from './client-resolver';
import { TokenCache } from './token-cache';
import { SecretCandidates } from './secret-candidates';
import { TokenSource } from './token-source';
import { REJECTION_HOLD_MS, TokenFetcher } from './token-fetcher';
import { TokenVendingService } from './token-vending.service';
import { TestClock } from '../../../test/support/clock';

const LIFETIME_SECONDS = 1200;
const CLIENT_SECRET = 'client-secret-never-logged';
const START = Date.UTC(2026, 10, 27, 10, 0, 0);

/** A fake IdP behind OAuthClient's seam: counts requests, answers on a later turn. */
class FakeOAuthClient {
  readonly requests: TokenRequest[] = [];
  lifetimeSeconds = LIFETIME_SECONDS;
  failure?: Error;

  constructor(private readonly clock: TestClock) {}

  async fetchToken(req: TokenRequest): Promise<IssuedToken> {
    this.requests.push(req);
    const n = this.requests.length;
    const requestedAt = this.clock.now();
    await new Promise((resolve) => setImmediate(resolve));
    if (this.failure) throw this.failure;
    return {
      accessToken: `eyJhbGciOiJSUzI1NiJ9.access-token-${n}.c2lnbmF0dXJl`,
      tokenType: 'Bearer',
      scope: req.scope,
      requestedAt,
      expiresAt: requestedAt + this.lifetimeSeconds * 1000,
      lifetimeSeconds: this.lifetimeSeconds,
    };
  }
}

const CONFIG_TEXT = stringify({
  environments: { uat: { tokenUrl: 'https://identity.uat.example/connect/token' } },
  clients: [
    {
      clientId: 'api-fake-test.client',
      environment: 'uat',
      secretEnv: 'CAS_SECRET',
      scope: 'deals-read',
    },
    { clientId: 'other.client', environment: 'uat', secretEnv: 'CAS_SECRET' },
  ],
  callers: [
    {
      name: 'deals-service',
      keySha256: createHash('sha256').update('k').digest('hex'),
      clients: ['api-fake-test.client'],
    },
  ],
  refresh: { ratio: 0.75, minTtlSeconds: 30 },
});

describe('TokenVendingService', () => {
  let clock: TestClock;
  let idp: FakeOAuthClient;
  let store: MemoryTokenStore;
  let cache: TokenCache;
  let caller: Caller;
  let config: ConfigService;
  let logLines: unknown[][];
  let sut: TokenVendingService;
  let disclosures: DisclosureLog;

  const vend = (
    query: { environment?: unknown; minTtl?: unknown } = {},
    clientId = 'api-fake-test.client',
  ) => sut.vend(caller, clientId, query);
  const apiClient = (): ClientConfig => config.clientsWithId('api-fake-test.client')[0];
  const tokenOf = (n: number): string => `eyJhbGciOiJSUzI1NiJ9.access-token-${n}.c2lnbmF0dXJl`;

  /** The real audit logger, writing into logLines (without the fields every line has). */
  const auditRoot = (): ReturnType<typeof createRootLogger> =>
    createRootLogger('info', {
      write: (text: string) => {
        const { level, time, service, context, ...line } = JSON.parse(text) as Record<
          string,
          unknown
        >;
        expect({ level, service, context, time: typeof time }).toEqual({
          level: 'info',
          service: 'token-vendor',
          context: 'Audit',
          time: 'string',
        });
        logLines.push([line]);
      },
    });

  beforeEach(async () => {
    logLines = [];
    for (const level of ['log', 'warn', 'error', 'debug', 'verbose'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => {
        logLines.push(args);
      });
    }
    clock = new TestClock({ start: START });
    idp = new FakeOAuthClient(clock);
    store = new MemoryTokenStore(clock);
    const service = parseServiceConfig(CONFIG_TEXT, 'test.yaml');
    config = new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
      service,
      secrets: new Map(service.clients.map((c) => [c.key, CLIENT_SECRET])),
    });
    caller = service.callers[0];

    const moduleRef = await Test.createTestingModule({
      providers: [
        { provide: ConfigService, useValue: config },
        { provide: CLOCK, useValue: clock },
        { provide: TOKEN_STORE, useValue: store },
        { provide: REFRESH_LOCK, useValue: store },
        { provide: FLEET_CHANNEL, useValue: new LocalFleetChannel() },
        { provide: OAuthClient, useValue: idp },
        ClientResolver,
        TokenCache,
        SchedulerRegistry,
        PeriodicTasks,
        TokenFetcher,
        SecretCandidates,
        TokenSource,
        TokenVendingService,
        { provide: AuditLog, useValue: new AuditLog(createAuditLogger(auditRoot())) },
        DisclosureLog,
      ],
    }).compile();
    sut = moduleRef.get(TokenVendingService);
    disclosures = moduleRef.get(DisclosureLog);
    cache = moduleRef.get(TokenCache);
  });

  afterEach(() => jest.restoreAllMocks());

  it('fetches on a cold cache and answers the documented body', async () => {
    const body = await vend();

    expect(idp.requests).toEqual([
      {
        environment: 'uat',
        clientId: 'api-fake-test.client',
        secret: CLIENT_SECRET,
        scope: 'deals-read',
        authMethod: 'client_secret_post',
        tokenUrl: 'https://identity.uat.example/connect/token',
        timeoutMs: 10_000,
      },
    ]);
    expect(body).toEqual({
      access_token: tokenOf(1),
      token_type: 'Bearer',
      expires_in: 1200,
      expires_at: '2026-11-27T10:20:00.000Z',
      scope: 'deals-read',
      client_id: 'api-fake-test.client',
      environment: 'uat',
    });
  });

  it('serves the second request within the token life from the cache', async () => {
    await vend();
    await clock.advance(600_000);

    const body = await vend();

    expect(idp.requests).toHaveLength(1);
    expect([body.access_token, body.expires_in]).toEqual([tokenOf(1), 600]);
  });

  it.each([
    // [ms after the fetch, IdP requests in total, token served, expires_in]
    [1_170_000 - 1, 1, 1, 30],
    [1_170_000, 1, 1, 30],
    [1_170_001, 2, 2, 1200],
    [1_199_999, 2, 2, 1200],
    [1_300_000, 2, 2, 1200],
  ])(
    '%i ms after the first fetch (minTtl 30 s) the IdP has seen %i request(s)',
    async (elapsed, requests, served, expiresIn) => {
      await vend();
      await clock.advance(elapsed);

      const body = await vend();

      expect(idp.requests).toHaveLength(requests);
      expect([body.access_token, body.expires_in]).toEqual([tokenOf(served), expiresIn]);
    },
  );

  it('sends one request to the IdP for 50 concurrent callers on a cold cache', async () => {
    const bodies = await Promise.all(Array.from({ length: 50 }, () => vend()));

    expect(idp.requests).toHaveLength(1);
    expect(new Set(bodies.map((b) => b.access_token))).toEqual(new Set([tokenOf(1)]));
  });

  it('sends one request for 50 concurrent callers when the held token becomes too short', async () => {
    await vend();
    await clock.advance(1_180_000);

    const bodies = await Promise.all(Array.from({ length: 50 }, () => vend()));

    expect(idp.requests).toHaveLength(2);
    expect(new Set(bodies.map((b) => b.access_token))).toEqual(new Set([tokenOf(2)]));
  });

  it('serves from the shared store when this replica has no copy', async () => {
    await store.put(cache.refOf(apiClient()), {
      accessToken: 'eyJ.from-another-replica.sig',
      tokenType: 'Bearer',
      requestedAt: START - 100_000,
      expiresAt: START + 1_100_000,
    });

    const body = await vend();

    expect(idp.requests).toHaveLength(0);
    expect([body.access_token, body.expires_in, body.scope]).toEqual([
      'eyJ.from-another-replica.sig',
      1100,
      'deals-read',
    ]);
  });

  it.each([
    // [minTtl, ms after the first fetch, IdP requests in total, expires_in]
    ['0', 1_199_000, 1, 1],
    ['600', 600_000, 1, 600],
    ['600', 600_001, 2, 1200],
    ['1200', 0, 1, 1200],
  ])(
    'with an explicit minTtl of %s s, %i ms after the first fetch the IdP has seen %i request(s)',
    async (minTtl, elapsed, requests, expiresIn) => {
      await vend();
      await clock.advance(elapsed);

      const body = await vend({ minTtl });

      expect(idp.requests).toHaveLength(requests);
      expect(body.expires_in).toBe(expiresIn);
      expect(body.expires_in).toBeGreaterThanOrEqual(Number(minTtl));
    },
  );

  it('answers invalid_request for an explicit minTtl longer than the token lifetime', async () => {
    const first = vend({ minTtl: '1201' });

    await expect(first).rejects.toThrow(
      new InvalidRequestError("minTtl (1201 s) is longer than this client's tokens live (1200 s)."),
    );
    await expect(first).rejects.toBeInstanceOf(InvalidRequestError);
    expect(idp.requests).toHaveLength(1);

    // A token younger than MIN_REFETCH_INTERVAL_MS is not replaced for the same ask.
    await clock.advance(4_999);
    await expect(vend({ minTtl: '1201' })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(idp.requests).toHaveLength(1);

    // The fetched token is still there for ordinary callers.
    expect((await vend()).access_token).toBe(tokenOf(1));
    expect(idp.requests).toHaveLength(1);
  });

  it('serves the token a concurrent request fetched while its own store read missed it', async () => {
    // The cold-burst race: a request looks for this replica's copy (none yet), then reads the
    // store; the read is answered before the fetched token is written, but by the time it
    // returns the token is this replica's copy. That copy is young and lasts long enough: it
    // is served, not taken for "too young to replace" (503 too_short).
    const readStore = store.get.bind(store);
    let landed!: () => void;
    const adopted = new Promise<void>((resolve) => (landed = resolve));
    cache.onAdopt(() => landed());

    const first = vend();
    for (let turn = 0; turn < 1_000 && idp.requests.length === 0; turn++) await Promise.resolve();
    expect(idp.requests).toHaveLength(1); // the fetch is in flight; no copy yet
    expect(cache.held(apiClient())).toBeUndefined();
    jest.spyOn(store, 'get').mockImplementation(async (ref) => {
      const answer = await readStore(ref); // the store as it was before the write...
      await adopted; // ...answered after the fetched token became this replica's copy
      return answer;
    });

    const [a, b] = await Promise.all([first, vend()]);

    expect([a.access_token, b.access_token]).toEqual([tokenOf(1), tokenOf(1)]);
    expect(b.expires_in).toBe(LIFETIME_SECONDS);
    expect(idp.requests).toHaveLength(1);
  });

  it.each([
    ['a negative number', '-1'],
    ['a fraction', '1.5'],
    ['above a day', '86401'],
    ['text', 'soon'],
    ['an empty string', ''],
    ['given twice', ['30', '60']],
  ])(
    'answers invalid_request without asking the IdP for a minTtl that is %s',
    async (_n, minTtl) => {
      await expect(vend({ minTtl })).rejects.toBeInstanceOf(InvalidRequestError);
      expect(idp.requests).toHaveLength(0);
    },
  );

  it('propagates an upstream outage, caches nothing, and asks again on the next call', async () => {
    const failure = new UpstreamUnavailableError('network', 'network error (ECONNREFUSED)');
    idp.failure = failure;

    await expect(vend()).rejects.toBe(failure);

    expect(cache.local(apiClient())).toBeUndefined();
    expect(await store.get(cache.refOf(apiClient()))).toBeUndefined();

    idp.failure = undefined;
    const body = await vend();
    expect(idp.requests).toHaveLength(2);
    expect(body.access_token).toBe(tokenOf(2));
  });

  it.each([
    // [ms after the refusal, IdP requests in total]
    [0, 1],
    [REJECTION_HOLD_MS - 1, 1],
    [REJECTION_HOLD_MS, 2],
  ])(
    'propagates a refusal, caches nothing, and %i ms later the IdP has seen %i request(s)',
    async (elapsed, requests) => {
      const refusal = new UpstreamRejectedError('invalid_client', 400);
      idp.failure = refusal;

      await expect(vend()).rejects.toBe(refusal);
      expect(cache.local(apiClient())).toBeUndefined();
      expect(await store.get(cache.refOf(apiClient()))).toBeUndefined();

      await clock.advance(elapsed);
      idp.failure = undefined;
      const next = await vend().then(
        (body) => body.access_token,
        (e: unknown) => e,
      );

      expect(idp.requests).toHaveLength(requests);
      expect(next).toBe(requests === 1 ? refusal : tokenOf(2));
    },
  );

  it('shares one upstream failure between concurrent callers', async () => {
    const failure = new UpstreamUnavailableError('timeout', 'no answer within 10000 ms');
    idp.failure = failure;

    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => vend()));

    expect(idp.requests).toHaveLength(1);
    expect(outcomes).toEqual(Array(20).fill({ status: 'rejected', reason: failure }));
  });

  it('rejects a client the caller may not use, without asking the IdP', async () => {
    const err: unknown = await vend({}, 'other.client').catch((e: unknown) => e);

    expect(err).toBeInstanceOf(UnknownClientError);
    expect((err as UnknownClientError).reason).toBe('not_allowed');
    expect(idp.requests).toHaveLength(0);
  });

  describe('audit log', () => {
    const auditLines = (): Record<string, unknown>[] =>
      logLines
        .map(([line]) => line as Record<string, unknown>)
        .filter((line) => typeof line === 'object' && line !== null && line.audit === true);

    it('writes the first disclosure at once, sums repeats into one summary, never the token', async () => {
      await sut.vend(caller, 'api-fake-test.client', {}, 'r-1', '10.0.0.1');
      await clock.advance(1_000);
      await sut.vend(caller, 'api-fake-test.client', {}, 'r-2', '10.0.0.2');
      await clock.advance(1_000);
      await sut.vend(caller, 'api-fake-test.client', {}, 'r-3', '10.0.0.1');

      const first = {
        msg: 'token request',
        audit: true,
        requestId: 'r-1',
        caller: 'deals-service',
        clientId: 'api-fake-test.client',
        environment: 'uat',
        outcome: 'served',
        tokenFingerprint: tokenFingerprint(tokenOf(1)),
        expiresIn: 1200,
        source: '10.0.0.1',
      };
      expect(auditLines()).toEqual([first]);

      disclosures.flush();
      expect(auditLines()).toEqual([
        first,
        {
          msg: 'token disclosures repeated',
          audit: true,
          caller: 'deals-service',
          clientId: 'api-fake-test.client',
          environment: 'uat',
          outcome: 'served',
          tokenFingerprint: tokenFingerprint(tokenOf(1)),
          count: 2,
          firstAt: new Date(START + 1_000).toISOString(),
          lastAt: new Date(START + 2_000).toISOString(),
          sources: ['10.0.0.2', '10.0.0.1'],
        },
      ]);
      const everything = JSON.stringify(logLines);
      expect(everything).not.toContain(tokenOf(1));
      expect(everything).not.toContain('access-token-1');
      expect(everything).not.toContain(CLIENT_SECRET);
    });

    it('a new token after a refresh is a new disclosure', async () => {
      await vend();
      await clock.advance(1_190_000); // too short for the default minTtl: a new token
      await vend();
      await vend();
      expect(auditLines().map((l) => [l.msg, l.tokenFingerprint])).toEqual([
        ['token request', tokenFingerprint(tokenOf(1))],
        ['token request', tokenFingerprint(tokenOf(2))],
      ]);
    });

    it.each([
      ['not allowed', 'other.client', {}, 'unknown_client', { reason: 'not_allowed' }],
      ['not configured', 'nobody.client', {}, 'unknown_client', { reason: 'not_configured' }],
      [
        'a bad minTtl',
        'api-fake-test.client',
        { minTtl: 'x' },
        'invalid_request',
        { reason: undefined },
      ],
    ])(
      'records the outcome of a refused request (%s)',
      async (_n, clientId, query, outcome, extra) => {
        await vend(query, clientId).catch(() => undefined);

        expect(auditLines()).toEqual([
          {
            msg: 'token request',
            audit: true,
            caller: 'deals-service',
            clientId,
            environment: undefined,
            outcome,
            ...extra,
          },
        ]);
      },
    );

    it('records an upstream failure without the token or the secret', async () => {
      await vend();
      await clock.advance(1_190_000);
      idp.failure = new UpstreamUnavailableError(
        'bad_status',
        'the token endpoint answered HTTP 503',
      );

      await expect(vend()).rejects.toBe(idp.failure);

      expect(auditLines().map((l) => l.outcome)).toEqual(['served', 'upstream_unavailable']);
      const everything = JSON.stringify(logLines);
      expect(everything).not.toContain('access-token-');
      expect(everything).not.toContain(CLIENT_SECRET);
    });
  });

  it('never serves a token at its expiry instant, even with minTtl=0', async () => {
    await vend();
    await clock.advance(LIFETIME_SECONDS * 1000);
    const body = await vend({ minTtl: '0' });
    expect(body.access_token).toBe(tokenOf(2));
    expect(idp.requests).toHaveLength(2);
  });

  it('does not ask the IdP on every request while its tokens are shorter than the default minTtl', async () => {
    idp.lifetimeSeconds = 20; // shorter than refresh.minTtlSeconds (30)
    await expect(vend()).rejects.toMatchObject({
      code: 'upstream_unavailable',
      reason: 'too_short',
    });
    await expect(vend()).rejects.toMatchObject({
      code: 'upstream_unavailable',
      reason: 'too_short',
    });
    await expect(vend()).rejects.toMatchObject({
      code: 'upstream_unavailable',
      reason: 'too_short',
    });
    expect(idp.requests).toHaveLength(1);
  });
});
