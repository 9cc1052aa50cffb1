import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTasks } from '@app/periodic';
import {
  ConfigService,
  parseServiceConfig,
  type ClientConfig,
  type RuntimeSettings,
  type ServiceConfig,
} from '@app/config';
import { UpstreamRejectedError, UpstreamUnavailableError } from '@app/errors';
import { LocalFleetChannel, MemoryTokenStore, type StoredToken } from '@app/token-store';
import type { IssuedToken, OAuthClient, TokenRequest } from '@app/upstream';
import { REJECTED_RETRY_MS } from './refresh-policy';
import { MAX_CONCURRENT_REFRESHES, RefreshScheduler, WARM_SPREAD_MS } from './refresh.scheduler';
import { SecretCandidates } from './secret-candidates';
import { TokenCache } from './token-cache';
import { TokenFetcher } from './token-fetcher';
import { TokenSource } from './token-source';
import { TestClock } from '../../../test/support/clock';

const LIFETIME_S = 1_200;
const LIFETIME_MS = LIFETIME_S * 1_000;
/** Just below 1: `random` is in [0, 1). */
const ALMOST_ONE = 1 - Number.EPSILON;
/** Refresh points of a 1200 s token with ratio 0.75 (jitter pulls them up to 10 % earlier). */
const DUE_AFTER = { random0: 900_000, random05: 855_000, random1: 810_000 };
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

function clientId(i: number): string {
  return `client-${String(i).padStart(5, '0')}`;
}

function serviceWith(clients: number): ServiceConfig {
  const lines = [
    'environments:',
    '  uat:',
    '    tokenUrl: https://idp.example.test/connect/token',
    '    timeoutMs: 1000',
    'refresh:',
    '  ratio: 0.75',
    'clients:',
  ];
  for (let i = 0; i < clients; i++) {
    lines.push(`  - { clientId: ${clientId(i)}, environment: uat, secretEnv: CAS_SECRET }`);
  }
  return parseServiceConfig(lines.join('\n'), 'test.yaml');
}

function configOf(service: ServiceConfig): ConfigService {
  return new ConfigService(RUNTIME, {
    service,
    secrets: new Map(service.clients.map((c) => [c.key, `secret-of-${c.clientId}`])),
  });
}

/** Returns the given values in order, then the last one for ever. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

/** The IdP as TokenFetcher sees it: counts requests, answers as each test says. */
class FakeIdp {
  readonly requests: TokenRequest[] = [];
  respond: (request: TokenRequest, token: IssuedToken) => Promise<IssuedToken> = (_, token) =>
    Promise.resolve(token);

  constructor(private readonly clock: TestClock) {}

  get count(): number {
    return this.requests.length;
  }

  countFor(id: string): number {
    return this.requests.filter((r) => r.clientId === id).length;
  }

  fetchToken(request: TokenRequest): Promise<IssuedToken> {
    this.requests.push(request);
    const requestedAt = this.clock.now();
    return this.respond(request, {
      accessToken: `${request.clientId}#${this.countFor(request.clientId)}`,
      tokenType: 'Bearer',
      requestedAt,
      expiresAt: requestedAt + LIFETIME_MS,
      lifetimeSeconds: LIFETIME_S,
    });
  }

  succeed(): void {
    this.respond = (_, token) => Promise.resolve(token);
  }

  fail(error: Error): void {
    this.respond = () => Promise.reject(error);
  }

  /** Every request from now on hangs until `release` is called. */
  hang(): { release: () => void } {
    const gates: (() => void)[] = [];
    this.respond = (_, token) => new Promise((resolve) => gates.push(() => resolve(token)));
    return { release: () => gates.splice(0).forEach((open) => open()) };
  }
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Settles `promise` while the clock moves in small steps (lock followers poll on the clock). */
async function settle<T>(clock: TestClock, promise: Promise<T>, maxMs = 60_000): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await flush();
  for (let waited = 0; !done && waited < maxMs; waited += 10) {
    await clock.advance(10);
    await flush();
  }
  return promise;
}

interface Replica {
  sut: RefreshScheduler;
  cache: TokenCache;
  fetcher: TokenFetcher;
}

describe('RefreshScheduler', () => {
  let clock: TestClock;
  let t0: number;
  let idp: FakeIdp;
  let store: MemoryTokenStore;

  /** One replica: its own cache, fetcher and scheduler, sharing the store and the IdP. */
  function replica(config: ConfigService, random: () => number): Replica {
    const fleet = new LocalFleetChannel();
    const cache = new TokenCache(store, fleet, config, clock);
    const fetcher = new TokenFetcher(
      config,
      idp as unknown as OAuthClient,
      cache,
      store,
      clock,
      new SecretCandidates(config, clock),
      new PeriodicTasks(new SchedulerRegistry()),
    );
    const source = new TokenSource(cache, fetcher, store, fleet, config, clock);
    const sut = new RefreshScheduler(
      config,
      source,
      clock,
      new PeriodicTasks(new SchedulerRegistry()),
      random,
      true,
    );
    return { sut, cache, fetcher };
  }

  beforeEach(() => {
    for (const level of ['log', 'warn', 'error', 'debug', 'verbose'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
    }
    clock = new TestClock();
    t0 = clock.now();
    idp = new FakeIdp(clock);
    store = new MemoryTokenStore(clock);
  });

  afterEach(() => jest.restoreAllMocks());

  describe('warming', () => {
    let config: ConfigService;
    let sut: RefreshScheduler;

    beforeEach(() => {
      config = configOf(serviceWith(3));
      ({ sut } = replica(config, sequence(0, 0.5, ALMOST_ONE, 0.5)));
    });
    // onApplicationBootstrap starts the real tick timer: the tests drive runDue themselves.
    afterEach(() => sut.onApplicationShutdown());

    it('schedules every client within WARM_SPREAD_MS of start-up', () => {
      sut.onApplicationBootstrap();

      const due = config.service.clients.map((c) => sut.state(c.key).nextRefreshAt);
      expect(due).toEqual([t0, t0 + 1_000, t0 + 1_999]);
      for (const at of due) expect(at! - t0).toBeLessThan(WARM_SPREAD_MS);
    });

    it('fetches each client once, as its warming time comes', async () => {
      sut.warmAll();

      await sut.runDue();
      expect(idp.requests.map((r) => r.clientId)).toEqual([clientId(0)]);

      await clock.advance(999);
      await sut.runDue();
      expect(idp.count).toBe(1);

      await clock.advance(1_000);
      await sut.runDue();
      expect(idp.requests.map((r) => r.clientId).sort()).toEqual([0, 1, 2].map(clientId));

      await clock.advance(WARM_SPREAD_MS);
      await sut.runDue();
      expect(idp.count).toBe(3);
      for (const c of config.service.clients) {
        expect(sut.state(c.key)).toMatchObject({
          consecutiveFailures: 0,
          lastRefreshAt: expect.any(Number),
        });
      }
    });

    it('warming again keeps the schedule it has', () => {
      sut.warmAll();
      const before = config.service.clients.map((c) => sut.state(c.key).nextRefreshAt);

      sut.warmAll();

      expect(config.service.clients.map((c) => sut.state(c.key).nextRefreshAt)).toEqual(before);
    });
  });

  describe('one client', () => {
    let config: ConfigService;
    let client: ClientConfig;
    let random: jest.Mock<number, []>;
    let sut: RefreshScheduler;
    let cache: TokenCache;

    beforeEach(() => {
      config = configOf(serviceWith(1));
      client = config.service.clients[0];
      // 0 for warming (due at once), then what each test sets.
      random = jest.fn<number, []>().mockReturnValueOnce(0).mockReturnValue(0.5);
      ({ sut, cache } = replica(config, random));
      sut.warmAll();
    });

    it.each([
      [0, DUE_AFTER.random0],
      [0.5, DUE_AFTER.random05],
      [ALMOST_ONE, DUE_AFTER.random1],
    ])(
      'with random %d the next refresh is due %i ms after the token was requested, not before',
      async (value, dueAfter) => {
        random.mockReturnValue(value);
        await sut.runDue();
        expect(idp.count).toBe(1);
        expect(sut.state(client.key)).toEqual({
          consecutiveFailures: 0,
          lastRefreshAt: t0,
          nextRefreshAt: t0 + dueAfter,
        });

        await clock.advance(dueAfter - 1);
        await sut.runDue();
        expect(idp.count).toBe(1);

        await clock.advance(1);
        await sut.runDue();
        expect(idp.count).toBe(2);
        expect(cache.local(client)).toMatchObject({
          accessToken: `${client.clientId}#2`,
          requestedAt: t0 + dueAfter,
        });
        expect(sut.state(client.key).nextRefreshAt).toBe(t0 + 2 * dueAfter);
      },
    );

    it('a failing IdP is retried with growing delays, then the refresh recovers', async () => {
      random.mockReturnValue(0); // the shortest jitter: each delay is half its step
      const unavailable = new UpstreamUnavailableError('network', 'connection reset');
      idp.fail(unavailable);
      await sut.runDue();
      expect(sut.state(client.key)).toEqual({
        consecutiveFailures: 1,
        lastError: { code: 'upstream_unavailable', message: unavailable.message, at: t0 },
        nextRefreshAt: t0 + 500,
      });

      const delays: number[] = [];
      for (let failures = 1; failures <= 7; failures++) {
        const delay = sut.state(client.key).nextRefreshAt! - clock.now();
        delays.push(delay);
        await clock.advance(delay - 1);
        await sut.runDue();
        expect(idp.count).toBe(failures);
        await clock.advance(1);
        await sut.runDue();
        expect(idp.count).toBe(failures + 1);
      }
      expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
      expect(sut.state(client.key)).toMatchObject({
        consecutiveFailures: 8,
        nextRefreshAt: clock.now() + 30_000,
      });

      idp.succeed();
      await clock.advance(30_000);
      const recoveredAt = clock.now();
      await sut.runDue();

      expect(idp.count).toBe(9);
      expect(cache.local(client)?.requestedAt).toBe(recoveredAt);
      expect(sut.state(client.key)).toEqual({
        consecutiveFailures: 0,
        lastRefreshAt: recoveredAt,
        // The last failure stays visible (admin view), with its time.
        lastError: {
          code: 'upstream_unavailable',
          message: unavailable.message,
          at: recoveredAt - 30_000,
        },
        nextRefreshAt: recoveredAt + DUE_AFTER.random0,
      });
    });

    it('a refused secret is tried again only after REJECTED_RETRY_MS', async () => {
      const rejected = new UpstreamRejectedError('invalid_client', 401);
      idp.fail(rejected);

      await sut.runDue();

      expect(sut.state(client.key)).toEqual({
        consecutiveFailures: 1,
        lastError: { code: 'upstream_rejected', message: rejected.message, at: t0 },
        nextRefreshAt: t0 + REJECTED_RETRY_MS,
      });
      for (const step of [1_000, 30_000, REJECTED_RETRY_MS - 31_001]) {
        await clock.advance(step);
        await sut.runDue();
      }
      expect(clock.now()).toBe(t0 + REJECTED_RETRY_MS - 1);
      expect(idp.count).toBe(1);

      await clock.advance(1);
      await sut.runDue();
      expect(idp.count).toBe(2);
      expect(sut.state(client.key)).toMatchObject({
        consecutiveFailures: 2,
        lastError: { code: 'upstream_rejected', at: t0 + REJECTED_RETRY_MS },
        nextRefreshAt: t0 + 2 * REJECTED_RETRY_MS,
      });
    });

    it('adopts the token another replica stored before its due time, without asking the IdP', async () => {
      await sut.runDue();
      expect(sut.state(client.key).nextRefreshAt).toBe(t0 + DUE_AFTER.random05);
      await clock.advance(800_000);
      const theirs: StoredToken = {
        accessToken: 'from-another-replica',
        tokenType: 'Bearer',
        requestedAt: t0 + 800_000,
        expiresAt: t0 + 800_000 + LIFETIME_MS,
      };
      await store.put(cache.refOf(client), theirs);

      await clock.advance(DUE_AFTER.random05 - 800_000);
      await sut.runDue();

      expect(idp.count).toBe(1);
      expect(cache.local(client)).toEqual(theirs);
      expect(sut.state(client.key).nextRefreshAt).toBe(theirs.requestedAt + DUE_AFTER.random05);

      await clock.advance(theirs.requestedAt + DUE_AFTER.random05 - clock.now());
      await sut.runDue();
      expect(idp.count).toBe(2);
    });

    it('drops a client that a reload removed, without asking the IdP', async () => {
      config.replace({ service: { ...config.service, clients: [] }, secrets: new Map() });

      await sut.runDue();

      expect(idp.count).toBe(0);
      expect(sut.state(client.key)).toEqual({ consecutiveFailures: 0, nextRefreshAt: undefined });
    });

    it('does nothing once shut down', async () => {
      sut.onApplicationShutdown();

      await sut.runDue();

      expect(idp.count).toBe(0);
    });

    it('does nothing when disabled, and does not follow adopted tokens', async () => {
      const ownFleet = new LocalFleetChannel();
      const ownCache = new TokenCache(store, ownFleet, config, clock);
      const ownFetcher = new TokenFetcher(
        config,
        idp as unknown as OAuthClient,
        ownCache,
        store,
        clock,
        new SecretCandidates(config, clock),
        new PeriodicTasks(new SchedulerRegistry()),
      );
      const disabled = new RefreshScheduler(
        config,
        new TokenSource(ownCache, ownFetcher, store, ownFleet, config, clock),
        clock,
        new PeriodicTasks(new SchedulerRegistry()),
        () => 0,
        false,
      );
      disabled.onApplicationBootstrap();
      await ownCache.save(client, {
        accessToken: 'adopted',
        tokenType: 'Bearer',
        requestedAt: t0,
        expiresAt: t0 + LIFETIME_MS,
      });

      await disabled.runDue();

      expect(idp.count).toBe(0);
      expect(disabled.state(client.key)).toEqual({
        consecutiveFailures: 0,
        nextRefreshAt: undefined,
      });
    });
  });

  it('two replicas: one IdP request per refresh for the fleet; the later replica adopts the token', async () => {
    const config = configOf(serviceWith(1));
    const client = config.service.clients[0];
    const a = replica(config, sequence(0, 0.5));
    const b = replica(config, sequence(0, 0.25));
    a.sut.warmAll();
    b.sut.warmAll();

    await settle(clock, Promise.all([a.sut.runDue(), b.sut.runDue()]));

    expect(idp.count).toBe(1);
    expect(a.cache.local(client)?.accessToken).toBe(`${client.clientId}#1`);
    expect(b.cache.local(client)?.accessToken).toBe(`${client.clientId}#1`);
    expect(a.sut.state(client.key).nextRefreshAt).toBe(t0 + DUE_AFTER.random05);
    expect(b.sut.state(client.key).nextRefreshAt).toBe(t0 + 877_500);

    await clock.advance(t0 + DUE_AFTER.random05 - clock.now());
    await a.sut.runDue();
    expect(idp.count).toBe(2);

    await clock.advance(t0 + 877_500 - clock.now());
    await b.sut.runDue();
    expect(idp.count).toBe(2);
    expect(b.cache.local(client)?.accessToken).toBe(`${client.clientId}#2`);
    expect(b.sut.state(client.key).nextRefreshAt).toBe(t0 + DUE_AFTER.random05 + 877_500);
  });

  it(`runs at most MAX_CONCURRENT_REFRESHES (${MAX_CONCURRENT_REFRESHES}) refreshes at once`, async () => {
    const config = configOf(serviceWith(20));
    const { sut } = replica(config, () => 0);
    sut.warmAll();
    const gate = idp.hang();

    const firstWave = sut.runDue();
    await flush();
    expect(idp.count).toBe(MAX_CONCURRENT_REFRESHES);
    await sut.runDue(); // a tick while every slot is busy starts nothing
    expect(idp.count).toBe(MAX_CONCURRENT_REFRESHES);

    idp.succeed();
    gate.release();
    // Each finished refresh hands its slot to the next due token at once (no tick wait).
    await firstWave;
    expect(idp.count).toBe(20);
    await sut.runDue();
    expect(idp.count).toBe(20);
    expect(new Set(idp.requests.map((r) => r.clientId)).size).toBe(20);
  });

  describe('with 10,000 clients configured', () => {
    let service: ServiceConfig;

    beforeAll(() => {
      service = serviceWith(10_000);
    });

    it('a tick with 3 due refreshes only those 3 and touches no other client', async () => {
      const config = configOf(service);
      // Warming: the last three clients are due now, the others at the end of the window.
      let calls = 0;
      const { sut } = replica(config, () => (calls++ < 9_997 ? ALMOST_ONE : 0));
      sut.warmAll();
      const due = service.clients.slice(-3).map((c) => c.key);
      const get = jest.spyOn(store, 'get');
      const acquire = jest.spyOn(store, 'acquireLock');

      await sut.runDue();

      expect(idp.requests.map((r) => `${r.environment}/${r.clientId}`).sort()).toEqual(due);
      const touched = new Set(
        [...get.mock.calls, ...acquire.mock.calls].map(
          ([ref]) => `${ref.environment}/${ref.clientId}`,
        ),
      );
      expect([...touched].sort()).toEqual(due);
      expect(sut.state(service.clients[0].key).nextRefreshAt).toBe(t0 + 1_999);
    });

    it('a tick looks up its due clients by key: it never scans the configured clients', async () => {
      let reads = 0;
      const counted = new Proxy(service.clients as ClientConfig[], {
        get(target, prop, receiver) {
          if (typeof prop === 'string' && /^\d+$/.test(prop)) reads++;
          return Reflect.get(target, prop, receiver);
        },
      });
      let calls = 0;
      const { sut } = replica(configOf({ ...service, clients: counted }), () =>
        calls++ < 9_997 ? ALMOST_ONE : 0,
      );
      sut.warmAll();
      reads = 0;

      await sut.runDue();
      expect(idp.count).toBe(3);
      await sut.runDue(); // an idle tick
      expect(idp.count).toBe(3);

      expect(reads).toBe(0);
    });
  });
});
