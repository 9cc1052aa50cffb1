import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTasks } from '@app/periodic';
import {
  ConfigService,
  parseServiceConfig,
  type ClientConfig,
  type RuntimeSettings,
} from '@app/config';
import { UpstreamRejectedError, UpstreamUnavailableError } from '@app/errors';
import {
  EXPIRY_TIE_MS,
  LocalFleetChannel,
  MemoryTokenStore,
  StoreUnavailableError,
  type StoredToken,
  type TokenRef,
} from '@app/token-store';
import type { IssuedToken, OAuthClient, TokenRequest } from '@app/upstream';
import { SecretCandidates } from './secret-candidates';
import { TokenCache } from './token-cache';
import {
  HOLDER_PATIENCE_MS,
  LOCK_POLL_INTERVAL_MS,
  REJECTION_HOLD_MS,
  TokenFetcher,
  lockTtlMs,
} from './token-fetcher';
import { TestClock } from '../../../test/support/clock';

const TOKEN_URL = 'https://idp.example.test/connect/token';
const TIMEOUT_MS = 1_000;
/** timeoutMs × 3 attempts + 2 s slack. */
const LOCK_TTL_MS = 5_000;
const LIFETIME_S = 1_200;
const SECRET = 'fetcher-spec-secret';
const CONFIG_YAML = `
environments:
  uat:
    tokenUrl: ${TOKEN_URL}
    timeoutMs: ${TIMEOUT_MS}
clients:
  - clientId: api-fake-test.client
    environment: uat
    secretEnv: CAS_SECRET_FAKE_TEST
    scope: deals-read permissions-read
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

/** The IdP as TokenFetcher sees it: counts requests, answers as each test says. */
class FakeIdp {
  readonly requests: TokenRequest[] = [];
  /** How the next requests are answered; `token` is what a success returns. */
  respond: (request: TokenRequest, token: IssuedToken) => Promise<IssuedToken> = (_, token) =>
    Promise.resolve(token);

  constructor(private readonly clock: TestClock) {}

  get count(): number {
    return this.requests.length;
  }

  fetchToken(request: TokenRequest): Promise<IssuedToken> {
    this.requests.push(request);
    // Counted from when the request is sent, as the real client does.
    const requestedAt = this.clock.now();
    return this.respond(request, {
      accessToken: `at-${this.requests.length}`,
      tokenType: 'Bearer',
      scope: request.scope,
      requestedAt,
      expiresAt: requestedAt + LIFETIME_S * 1_000,
      lifetimeSeconds: LIFETIME_S,
    });
  }

  /** Every request from now on hangs until `release` is called. */
  hang(): { release: () => void } {
    const gates: (() => void)[] = [];
    this.respond = (_, token) =>
      new Promise((resolve) => {
        gates.push(() => resolve(token));
      });
    return { release: () => gates.splice(0).forEach((open) => open()) };
  }
}

/** A MemoryTokenStore whose every operation can be made to fail like an unreachable Redis. */
class FlakyStore extends MemoryTokenStore {
  down = false;
  lockDown = false;

  override get(ref: TokenRef): Promise<StoredToken | undefined> {
    return this.down ? this.unavailable() : super.get(ref);
  }

  override put(ref: TokenRef, token: StoredToken): Promise<boolean> {
    return this.down ? this.unavailable() : super.put(ref, token);
  }

  override acquireLock(ref: TokenRef, owner: string, ttlMs: number): Promise<boolean> {
    return this.down || this.lockDown ? this.unavailable() : super.acquireLock(ref, owner, ttlMs);
  }

  private unavailable(): Promise<never> {
    return Promise.reject(new StoreUnavailableError('connection refused'));
  }
}

/** Lets every promise that can move without the clock move. */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function advance(clock: TestClock, ms: number, stepMs = 10): Promise<void> {
  await flush(); // whatever was just started reads the clock before it moves
  for (let left = ms; left > 0; left -= stepMs) {
    await clock.advance(Math.min(stepMs, left));
    await flush();
  }
}

/** Settles `promise` while the clock moves in small steps (pollers sleep on the clock). */
async function settle<T>(clock: TestClock, promise: Promise<T>, maxMs = 60_000): Promise<T> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await flush();
  for (let waited = 0; !done && waited < maxMs; waited += 10) await advance(clock, 10);
  return promise;
}

describe('TokenFetcher', () => {
  let clock: TestClock;
  let t0: number;
  let config: ConfigService;
  let client: ClientConfig;
  let idp: FakeIdp;
  let store: FlakyStore;

  /** One replica: its own cache and fetcher in front of the shared store. */
  function replica(): { fetcher: TokenFetcher; cache: TokenCache; candidates: SecretCandidates } {
    const cache = new TokenCache(store, new LocalFleetChannel(), config, clock);
    const candidates = new SecretCandidates(config, clock);
    const fetcher = new TokenFetcher(
      config,
      idp as unknown as OAuthClient,
      cache,
      store,
      clock,
      candidates,
      new PeriodicTasks(new SchedulerRegistry()),
    );
    return { fetcher, cache, candidates };
  }

  let sut: TokenFetcher;
  let cache: TokenCache;
  let candidates: SecretCandidates;

  beforeEach(() => {
    for (const level of ['log', 'warn', 'error', 'debug', 'verbose'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
    }
    clock = new TestClock();
    t0 = clock.now();
    const service = parseServiceConfig(CONFIG_YAML, 'test.yaml');
    client = service.clients[0];
    config = new ConfigService(RUNTIME, { service, secrets: new Map([[client.key, SECRET]]) });
    idp = new FakeIdp(clock);
    store = new FlakyStore(clock);
    ({ fetcher: sut, cache, candidates } = replica());
  });

  afterEach(() => jest.restoreAllMocks());

  it('holds its lock for timeoutMs × 3 attempts + 2 s', () => {
    expect(lockTtlMs(config.service.environments.get('uat')!)).toBe(LOCK_TTL_MS);
  });

  it('asks the IdP with the client configuration and keeps the token locally and in the store', async () => {
    const token = await sut.obtain(client);

    expect(idp.requests).toEqual([
      {
        environment: 'uat',
        clientId: 'api-fake-test.client',
        secret: SECRET,
        scope: 'deals-read permissions-read',
        authMethod: 'client_secret_post',
        tokenUrl: TOKEN_URL,
        timeoutMs: TIMEOUT_MS,
      },
    ]);
    const expected: StoredToken = {
      accessToken: 'at-1',
      tokenType: 'Bearer',
      scope: 'deals-read permissions-read',
      requestedAt: t0,
      expiresAt: t0 + LIFETIME_S * 1_000,
    };
    expect(token).toEqual(expected);
    expect(cache.local(client)).toEqual(expected);
    await expect(store.get(cache.refOf(client))).resolves.toEqual(expected);
  });

  describe('with a token in the store', () => {
    const stored: StoredToken = {
      accessToken: 'stored',
      tokenType: 'Bearer',
      requestedAt: Date.UTC(2026, 10, 27, 9, 59, 0),
      expiresAt: Date.UTC(2026, 10, 27, 10, 10, 0),
    };

    beforeEach(async () => {
      await store.put(cache.refOf(client), stored);
    });

    it.each([
      ['nothing is known', 0, 0, 'stored'],
      // Expiries closer than EXPIRY_TIE_MS are one token read twice (README "Which clock decides what").
      ['an older token is known', stored.expiresAt - EXPIRY_TIE_MS - 1, 0, 'stored'],
      ['the same token, read with a round trip less', stored.expiresAt - EXPIRY_TIE_MS, 1, 'at-1'],
      ['the stored token itself is known', stored.expiresAt, 1, 'at-1'],
    ])(
      'and %s (knownExpiresAt %i) → %i IdP request(s), %s',
      async (_, known, requests, accessToken) => {
        const token = await sut.obtain(client, known);

        expect(idp.count).toBe(requests);
        expect(token.accessToken).toBe(accessToken);
      },
    );
  });

  describe('single flight', () => {
    it('50 concurrent obtains on one replica → 1 IdP request, one token for all', async () => {
      const gate = idp.hang();

      const all = Promise.all(Array.from({ length: 50 }, () => sut.obtain(client)));
      await flush();
      expect(idp.count).toBe(1);
      expect(sut.isFetching(client)).toBe(true);
      gate.release();
      const tokens = await all;

      expect(idp.count).toBe(1);
      expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['at-1']));
      expect(sut.isFetching(client)).toBe(false);
    });

    it('two replicas sharing one store, 25 obtains each → 1 IdP request in total, the same token', async () => {
      const other = replica();
      const gate = idp.hang();

      const mine = Promise.all(Array.from({ length: 25 }, () => sut.obtain(client)));
      const theirs = Promise.all(Array.from({ length: 25 }, () => other.fetcher.obtain(client)));
      await flush();
      expect(idp.count).toBe(1);
      gate.release();
      const tokens = [...(await settle(clock, mine)), ...(await settle(clock, theirs))];

      expect(idp.count).toBe(1);
      expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['at-1']));
      expect(other.cache.local(client)?.accessToken).toBe('at-1');
      expect(cache.local(client)?.accessToken).toBe('at-1');
    });

    it('the follower finds the token at its next poll of the store', async () => {
      const other = replica();
      const gate = idp.hang();
      const leader = sut.obtain(client);
      await flush();
      const follower = other.fetcher.obtain(client);
      await flush();

      gate.release();
      await leader;
      let followed: StoredToken | undefined;
      void follower.then((t) => (followed = t));
      await advance(clock, LOCK_POLL_INTERVAL_MS - 10);
      expect(followed).toBeUndefined();
      await advance(clock, 10);

      expect(followed?.accessToken).toBe('at-1');
      expect(idp.count).toBe(1);
    });

    it('a later obtain that knows the token fetches again (a settled flight is not remembered)', async () => {
      const first = await sut.obtain(client);

      const second = await sut.obtain(client, first.expiresAt);

      expect(idp.count).toBe(2);
      expect(second.accessToken).toBe('at-2');
    });
  });

  describe('the lock', () => {
    it.each([
      ['success', undefined],
      ['failure', new UpstreamUnavailableError('network', 'connection reset')],
      ['rejection', new UpstreamRejectedError('invalid_client', 401)],
    ])('is released by its owner after %s', async (_, error) => {
      if (error) idp.respond = () => Promise.reject(error);
      const acquire = jest.spyOn(store, 'acquireLock');
      const release = jest.spyOn(store, 'releaseLock');

      await sut.obtain(client).catch(() => undefined);

      expect(acquire).toHaveBeenCalledTimes(1);
      expect(release).toHaveBeenCalledTimes(1);
      expect(release).toHaveBeenCalledWith(cache.refOf(client), acquire.mock.calls[0][1]);
      await expect(store.acquireLock(client, 'probe', 1_000)).resolves.toBe(true);
    });

    it('is taken with the lock TTL', async () => {
      const acquire = jest.spyOn(store, 'acquireLock');

      await sut.obtain(client);

      expect(acquire).toHaveBeenCalledWith(cache.refOf(client), expect.any(String), LOCK_TTL_MS);
    });

    it('is released at shutdown while a fetch still runs', async () => {
      const gate = idp.hang();
      const pending = sut.obtain(client);
      await flush();
      await expect(store.acquireLock(client, 'probe', 1_000)).resolves.toBe(false);

      await sut.onApplicationShutdown();

      await expect(store.acquireLock(client, 'probe', 1_000)).resolves.toBe(true);
      gate.release();
      await pending;
    });

    describe('when its holder never delivers', () => {
      let gate: { release: () => void };
      let stalled: Promise<StoredToken>;
      let other: ReturnType<typeof replica>;

      beforeEach(async () => {
        // The holder is frozen: its watchdog does not extend the lock either.
        jest.spyOn(store, 'extendLock').mockResolvedValue(false);
        other = replica();
        gate = idp.hang();
        stalled = sut.obtain(client);
        await flush();
        expect(idp.count).toBe(1);
      });

      afterEach(async () => {
        gate.release();
        await stalled;
      });

      it('the follower fetches itself once the lock TTL has passed, not before', async () => {
        idp.respond = (_, token) => Promise.resolve(token);
        const follower = other.fetcher.obtain(client);

        await advance(clock, LOCK_TTL_MS - LOCK_POLL_INTERVAL_MS);
        expect(idp.count).toBe(1);
        await advance(clock, LOCK_POLL_INTERVAL_MS);
        expect(idp.count).toBe(2);

        const token = await follower;
        expect(token).toMatchObject({ accessToken: 'at-2', requestedAt: t0 + LOCK_TTL_MS });
      });

      it('a stalled holder that delivers late does not replace the newer token', async () => {
        const takeover = idp.hang(); // only the follower's request waits on this gate
        const follower = other.fetcher.obtain(client);
        await advance(clock, LOCK_TTL_MS);
        expect(idp.count).toBe(2);

        takeover.release();
        const fresh = await follower;
        gate.release();
        const late = await stalled;

        expect(late.requestedAt).toBe(t0);
        expect(fresh.requestedAt).toBe(t0 + LOCK_TTL_MS);
        await expect(store.get(cache.refOf(client))).resolves.toEqual(fresh);
      });

      it('the stalled holder releasing late leaves the lock of the replica that took over', async () => {
        const takeover = idp.hang();
        const follower = other.fetcher.obtain(client);
        await advance(clock, LOCK_TTL_MS);
        expect(idp.count).toBe(2);

        gate.release();
        await stalled;

        await expect(store.acquireLock(client, 'probe', 1_000)).resolves.toBe(false);
        takeover.release();
        await follower;
        await expect(store.acquireLock(client, 'probe', 1_000)).resolves.toBe(true);
      });
    });

    it('a holder that keeps extending its lock (a long Retry-After) is not raced; one that never delivers is fetched around after twice the TTL and HOLDER_PATIENCE_MS', async () => {
      // Someone else holds the lock and keeps it alive.
      jest.spyOn(store, 'acquireLock').mockResolvedValue(false);

      const follower = sut.obtain(client);
      // Twice the lock's life: the old limit, where every waiter used to fetch around it.
      await advance(clock, 2 * LOCK_TTL_MS + 30_000);
      expect(idp.count).toBe(0);
      await advance(clock, HOLDER_PATIENCE_MS - 30_000 - LOCK_POLL_INTERVAL_MS);
      expect(idp.count).toBe(0);
      await advance(clock, 2 * LOCK_POLL_INTERVAL_MS + LOCK_TTL_MS);

      expect(idp.count).toBe(1);
      const token = await follower;
      expect(token.requestedAt).toBeGreaterThanOrEqual(t0 + 2 * LOCK_TTL_MS + HOLDER_PATIENCE_MS);
    });

    it('a background refresh tries the lock even when the last store operation failed (no lock-less refresh beside a holder)', async () => {
      jest.spyOn(store, 'acquireLock').mockResolvedValue(false);
      // A failed read marks the store down for this replica.
      jest.spyOn(store, 'get').mockRejectedValueOnce(new StoreUnavailableError('redis: timeout'));
      await cache.shared(client);
      expect(cache.storeAvailable).toBe(false);

      const refresh = sut.obtain(client, 0, { background: true });
      await advance(clock, 2 * LOCK_TTL_MS);
      expect(idp.count).toBe(0); // waits for the holder instead of fetching around it
      expect(store.acquireLock).toHaveBeenCalled();
      // The holder delivers.
      const theirs: StoredToken = {
        accessToken: 'theirs',
        tokenType: 'Bearer',
        requestedAt: clock.now(),
        expiresAt: clock.now() + 1_200_000,
      };
      await MemoryTokenStore.prototype.put.call(store, cache.refOf(client), theirs);
      await advance(clock, LOCK_POLL_INTERVAL_MS * 2);
      await expect(refresh).resolves.toEqual(theirs);
      expect(idp.count).toBe(0);
    });
  });

  describe('a rejection by the IdP', () => {
    const rejection = new UpstreamRejectedError('invalid_client', 401);

    beforeEach(() => {
      idp.respond = () => Promise.reject(rejection);
    });

    it('is held for REJECTION_HOLD_MS without asking the IdP again, then tried again', async () => {
      await expect(sut.obtain(client)).rejects.toBe(rejection);
      expect(idp.count).toBe(1);

      await clock.advance(REJECTION_HOLD_MS - 1);
      await expect(sut.obtain(client)).rejects.toBe(rejection);
      expect(idp.count).toBe(1);

      await clock.advance(1);
      idp.respond = (_, token) => Promise.resolve(token);
      await expect(sut.obtain(client)).resolves.toMatchObject({ accessToken: 'at-2' });
      expect(idp.count).toBe(2);
    });

    it('is forgotten by clearRejection (a changed secret is tried at once)', async () => {
      await expect(sut.obtain(client)).rejects.toBe(rejection);

      sut.clearRejection(client.key);
      idp.respond = (_, token) => Promise.resolve(token);

      await expect(sut.obtain(client)).resolves.toMatchObject({ accessToken: 'at-2' });
      expect(idp.count).toBe(2);
    });

    describe('while a newer secret is pending (rotation)', () => {
      const ROTATED = 'fetcher-spec-rotated-secret';

      beforeEach(() => {
        const seenAt = clock.now();
        candidates.propose(client.key, {
          secret: ROTATED,
          digest: 'digest-of-rotated',
          seenAt,
          attempts: 0,
          nextTryAt: seenAt,
        });
      });

      it('tries the candidate at once and adopts it when the IdP accepts it', async () => {
        idp.respond = (request, token) =>
          request.secret === ROTATED ? Promise.resolve(token) : Promise.reject(rejection);

        const token = await settle(clock, sut.obtain(client));

        expect(token.accessToken).toBe('at-2');
        expect(idp.requests.map((request) => request.secret)).toEqual([SECRET, ROTATED]);
        expect(config.secretFor(client.key)).toBe(ROTATED);
        expect(candidates.pending(client.key)).toBeUndefined();
        expect(candidates.historyOf(client.key)).toEqual({ lastRotationAt: clock.now() });
        // Adopted and no refusal held: the next fetch goes straight out with the new secret.
        await expect(settle(clock, sut.obtain(client, token.expiresAt))).resolves.toMatchObject({
          accessToken: 'at-3',
        });
        expect(idp.requests.map((request) => request.secret)).toEqual([SECRET, ROTATED, ROTATED]);
      });

      it('keeps the secret in use and holds the refusal when the candidate is refused too', async () => {
        await expect(settle(clock, sut.obtain(client))).rejects.toBe(rejection);

        expect(idp.requests.map((request) => request.secret)).toEqual([SECRET, ROTATED]);
        expect(config.secretFor(client.key)).toBe(SECRET);
        expect(candidates.candidateFor(client)).toBe(ROTATED);
        await expect(sut.obtain(client)).rejects.toBe(rejection);
        expect(idp.count).toBe(2);
      });
    });

    it('is not held after an unavailable IdP (that is retried by the caller)', async () => {
      idp.respond = () => Promise.reject(new UpstreamUnavailableError('timeout', 'timed out'));
      await expect(sut.obtain(client)).rejects.toBeInstanceOf(UpstreamUnavailableError);

      await expect(sut.obtain(client)).rejects.toBeInstanceOf(UpstreamUnavailableError);

      expect(idp.count).toBe(2);
    });
  });

  describe('without a working store', () => {
    it('fetches directly when taking the lock throws, still once for concurrent callers', async () => {
      store.lockDown = true;
      const gate = idp.hang();

      const all = Promise.all(Array.from({ length: 20 }, () => sut.obtain(client)));
      await flush();
      gate.release();
      const tokens = await all;

      expect(idp.count).toBe(1);
      expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['at-1']));
      expect(cache.local(client)?.accessToken).toBe('at-1');
    });

    it('fetches directly and keeps the token locally when the whole store is down', async () => {
      store.down = true;

      const token = await sut.obtain(client);

      expect(idp.count).toBe(1);
      expect(cache.local(client)).toEqual(token);
      expect(cache.storeAvailable).toBe(false);
    });

    it('a follower whose store fails while it waits stops waiting and fetches itself', async () => {
      const gate = idp.hang();
      const stalled = sut.obtain(client);
      await flush();
      const other = replica();
      const follower = other.fetcher.obtain(client);
      await advance(clock, 2 * LOCK_POLL_INTERVAL_MS);
      expect(idp.count).toBe(1);

      store.down = true;
      idp.respond = (_, token) => Promise.resolve(token);
      await advance(clock, LOCK_POLL_INTERVAL_MS);

      expect(idp.count).toBe(2);
      await expect(follower).resolves.toMatchObject({ accessToken: 'at-2' });
      gate.release();
      await stalled;
    });
  });

  it('refuses a client whose secret disappeared (a reload under a running request)', async () => {
    config.replace({ service: config.service, secrets: new Map() });

    await expect(sut.obtain(client)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    expect(idp.count).toBe(0);
  });
});
