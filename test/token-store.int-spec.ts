import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { ClockSkew, SystemClock, type Clock } from '@app/clock';
import {
  MemoryTokenStore,
  RedisKeys,
  RedisTokenStore,
  StoreUnavailableError,
  TokenCipher,
  createRedisClient,
  waitUntilReady,
  tokenSha256,
  type RefreshLock,
  type StoredToken,
  type TokenStore,
} from '@app/token-store';
import { Logger } from '@nestjs/common';
import { requireTestRedisUrl, TestClock } from './support';

/**
 * One contract, two implementations: the Redis store against a real Redis server and the
 * memory store. Clock: a token's times are readings of the store user's monotonic clock (a
 * manual clock here). The memory store keeps them as they are; the Redis store keeps the
 * remaining life as the key's TTL, in Redis's own time, so time passes for it only in real time
 * (`elapse`), and a token read back expires no later than written, a few ms earlier at most.
 */
const ref = { environment: 'uat', clientId: 'deals.client' };
const other = { environment: 'production', clientId: 'deals.client' };
const ACCESS_TOKEN = 'eyJ.contract-suite-token-' + 'x'.repeat(40);

function token(clock: Clock, lifetimeMs: number, accessToken = ACCESS_TOKEN): StoredToken {
  const requestedAt = clock.monotonic();
  return {
    accessToken,
    tokenType: 'Bearer',
    scope: 'deals-read',
    requestedAt,
    expiresAt: requestedAt + lifetimeMs,
  };
}

/** The same token and lifetime; expiring no later than written, and less than 1 s earlier. */
async function expectReadBack(
  read: Promise<StoredToken | undefined>,
  written: StoredToken,
): Promise<void> {
  const got = await read;
  expect(got).toBeDefined();
  const { expiresAt, requestedAt, ...rest } = got!;
  const { expiresAt: wantExpiresAt, requestedAt: wantRequestedAt, ...wantRest } = written;
  expect(rest).toEqual(wantRest);
  expect(expiresAt - requestedAt).toBe(wantExpiresAt - wantRequestedAt);
  expect(expiresAt).toBeLessThanOrEqual(wantExpiresAt);
  expect(expiresAt).toBeGreaterThan(wantExpiresAt - 1000);
}

interface Harness {
  store: TokenStore & RefreshLock;
  clock: TestClock;
  /** Lets `ms` pass for the store: the manual clock, and for Redis real time too. */
  elapse(ms: number): Promise<void>;
  /** Remaining TTL the backing store itself holds, in ms (undefined when absent). */
  ttlMs(r: typeof ref): Promise<number | undefined>;
  close(): Promise<void>;
}

const keyA = { kid: 'a', key: randomBytes(32) };
const keyB = { kid: 'b', key: randomBytes(32) };

async function redisHarness(): Promise<Harness & { raw: Redis; keys: RedisKeys; prefix: string }> {
  const clock = new TestClock({ start: Date.now() });
  const prefix = `tv-store-test-${randomUUID()}:`;
  const client = createRedisClient({ mode: 'standalone', url: requireTestRedisUrl() }) as Redis;
  const raw = new Redis(requireTestRedisUrl());
  const keys = new RedisKeys(prefix);
  const store = new RedisTokenStore(client, new TokenCipher([keyA]), clock, prefix);
  await waitUntilReady(client, 5_000);
  return {
    store,
    clock,
    async elapse(ms) {
      await new Promise((r) => setTimeout(r, ms));
      await clock.advance(ms);
    },
    raw,
    keys,
    prefix,
    async ttlMs(r) {
      const ttl = await raw.pttl(keys.token(r));
      return ttl < 0 ? undefined : ttl;
    },
    async close() {
      const found = await raw.keys(`${prefix}*`);
      if (found.length) await raw.del(...found);
      raw.disconnect();
      client.disconnect();
    },
  };
}

function memoryHarness(): Harness {
  const clock = new TestClock({ start: Date.now() });
  const store = new MemoryTokenStore(clock);
  return {
    store,
    clock,
    elapse: (ms) => clock.advance(ms),
    async ttlMs(r) {
      const t = await store.get(r);
      return t ? t.expiresAt - clock.monotonic() : undefined;
    },
    close: () => Promise.resolve(),
  };
}

describe.each([
  ['redis', redisHarness],
  ['memory', () => Promise.resolve(memoryHarness())],
])('TokenStore contract: %s', (_name, makeHarness) => {
  let h: Harness;
  beforeEach(async () => {
    h = await makeHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('returns nothing for a client it never held', async () => {
    await expect(h.store.get(ref)).resolves.toBeUndefined();
  });

  it('returns the stored token intact', async () => {
    const t = token(h.clock, 1_200_000);
    await expect(h.store.put(ref, t)).resolves.toBe(true);
    await expectReadBack(h.store.get(ref), t);
    await expect(h.store.get(other)).resolves.toBeUndefined();
  });

  it('keeps the entry no longer than the token lives (TTL ≤ remaining life)', async () => {
    const t = token(h.clock, 60_000);
    await h.store.put(ref, t);
    const ttl = await h.ttlMs(ref);
    expect(ttl).toBeDefined();
    expect(ttl!).toBeLessThanOrEqual(60_000);
    expect(ttl!).toBeGreaterThan(55_000);
  });

  it('never returns an expired token', async () => {
    await h.store.put(ref, token(h.clock, 300));
    await h.elapse(300);
    await expect(h.store.get(ref)).resolves.toBeUndefined();
  });

  it('refuses to store a token that is already expired', async () => {
    const t = token(h.clock, 1_000);
    await h.clock.advance(2_000);
    await expect(h.store.put(ref, t)).resolves.toBe(false);
    await expect(h.store.get(ref)).resolves.toBeUndefined();
  });

  it('never replaces a token with one that expires earlier or at the same time (fence)', async () => {
    const later = token(h.clock, 1_200_000, 'later-token');
    const earlier = token(h.clock, 600_000, 'earlier-token');
    const same = { ...later, accessToken: 'same-expiry-token' };
    await expect(h.store.put(ref, later)).resolves.toBe(true);
    await expect(h.store.put(ref, earlier)).resolves.toBe(false);
    await expect(h.store.put(ref, same)).resolves.toBe(false);
    await expectReadBack(h.store.get(ref), later);

    const newer = token(h.clock, 1_300_000, 'newer-token');
    await expect(h.store.put(ref, newer)).resolves.toBe(true);
    await expectReadBack(h.store.get(ref), newer);
  });

  it('deletes', async () => {
    await h.store.put(ref, token(h.clock, 60_000));
    await h.store.delete(ref);
    await expect(h.store.get(ref)).resolves.toBeUndefined();
  });

  it('answers ping', async () => {
    await expect(h.store.ping()).resolves.toBeUndefined();
  });

  it('returns a token only to the shape that stored it; the later token holds the slot across shapes', async () => {
    const wide = { ...ref, shape: 'wide' };
    const narrow = { ...ref, shape: 'narrow' };
    const first = token(h.clock, 600_000, 'wide-token');
    await h.store.put(wide, first);
    await expect(h.store.get(narrow)).resolves.toBeUndefined();
    await expectReadBack(h.store.get(wide), first);
    const second = token(h.clock, 700_000, 'narrow-token');
    await expect(h.store.put(narrow, second)).resolves.toBe(true);
    await expectReadBack(h.store.get(narrow), second);
    await expect(h.store.get(wide)).resolves.toBeUndefined();
  });

  it('revokes: the marker outlives the value, the value goes, and the token is never written back', async () => {
    const t = token(h.clock, 600_000, 'revoked-token');
    const sha = tokenSha256(t.accessToken);
    await h.store.put(ref, t);
    await expect(h.store.isRevoked(ref, sha)).resolves.toBe(false);
    await h.store.revoke(ref, sha, t.expiresAt);
    await expect(h.store.isRevoked(ref, sha)).resolves.toBe(true);
    await expect(h.store.isRevoked(other, sha)).resolves.toBe(false);
    await expect(h.store.get(ref)).resolves.toBeUndefined();
    await expect(h.store.put(ref, t)).resolves.toBe(false);
    const next = token(h.clock, 500_000, 'next-token');
    await expect(h.store.put(ref, next)).resolves.toBe(true);
    await expectReadBack(h.store.get(ref), next);
  });

  it('revoking an older token leaves the stored newer one', async () => {
    const newer = token(h.clock, 600_000, 'newer-token');
    await h.store.put(ref, newer);
    await h.store.revoke(ref, tokenSha256('older-token'), newer.expiresAt - 1000);
    await expectReadBack(h.store.get(ref), newer);
  });

  it('grants one forced refresh per interval per client', async () => {
    await expect(h.store.claimForcedRefresh(ref, 60_000)).resolves.toBe(true);
    await expect(h.store.claimForcedRefresh(ref, 60_000)).resolves.toBe(false);
    await expect(h.store.claimForcedRefresh(other, 60_000)).resolves.toBe(true);
  });

  it('says whether a lock is held', async () => {
    await expect(h.store.isLocked(ref)).resolves.toBe(false);
    await h.store.acquireLock(ref, 'me', 60_000);
    await expect(h.store.isLocked(ref)).resolves.toBe(true);
    await h.store.releaseLock(ref, 'me');
    await expect(h.store.isLocked(ref)).resolves.toBe(false);
  });
});

describe('RedisTokenStore at rest', () => {
  let h: Awaited<ReturnType<typeof redisHarness>>;
  beforeEach(async () => {
    h = await redisHarness();
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await h.close();
  });

  it('writes one key per (environment, client), hash-tagged, under the prefix', async () => {
    await h.store.put(ref, token(h.clock, 60_000));
    await h.store.put(other, token(h.clock, 60_000));
    const keys = (await h.raw.keys(`${h.prefix}*`)).sort();
    expect(keys).toEqual([
      `${h.prefix}{production/deals.client}:token`,
      `${h.prefix}{uat/deals.client}:token`,
    ]);
  });

  it('stores the token encrypted: the value never holds the token, scope or client in clear', async () => {
    await h.store.put(ref, token(h.clock, 60_000));
    const raw = (await h.raw.get(h.keys.token(ref)))!;
    expect(raw).not.toContain(ACCESS_TOKEN);
    expect(raw).not.toContain('contract-suite-token');
    expect(raw).not.toContain('deals-read');
    // `<expiry in Redis time>|<lifetime ms>|<envelope>|<shape>`: shape '' for a ref without one.
    expect(raw).toMatch(/^\d+\|60000\|v1\.a\.[\w-]+\.[\w-]+\.[\w-]+\|$/);
  });

  it('uses a fresh IV per write', async () => {
    const t = token(h.clock, 60_000);
    await h.store.put(ref, t);
    const first = (await h.raw.get(h.keys.token(ref)))!;
    await h.store.delete(ref);
    await h.store.put(ref, t);
    const second = (await h.raw.get(h.keys.token(ref)))!;
    expect(second).not.toBe(first);
  });

  it('counts a value under an unknown key id as absent (logged once), and the next write replaces it', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await h.store.put(ref, token(h.clock, 600_000));
    const client = createRedisClient({ mode: 'standalone', url: requireTestRedisUrl() }) as Redis;
    await waitUntilReady(client, 5_000);
    try {
      const otherKeys = new RedisTokenStore(client, new TokenCipher([keyB]), h.clock, h.prefix);
      await expect(otherKeys.get(ref)).resolves.toBeUndefined();
      await expect(otherKeys.get(ref)).resolves.toBeUndefined();
      const unreadable = warn.mock.calls.filter(
        ([line]) => (line as { msg?: string }).msg?.startsWith('stored token unreadable') === true,
      );
      expect(unreadable).toEqual([
        [
          {
            msg: 'stored token unreadable; treated as absent until the next write replaces it',
            environment: 'uat',
            clientId: 'deals.client',
            reason: 'unknown key id a',
          },
        ],
      ]);
      // Even an earlier-expiring token replaces the unreadable value (the fence ignores it).
      const replacement = token(h.clock, 60_000, 'replacement-token');
      await expect(otherKeys.put(ref, replacement)).resolves.toBe(true);
      await expectReadBack(otherKeys.get(ref), replacement);
    } finally {
      client.disconnect();
      warn.mockRestore();
    }
  });

  it('decrypts values of a retired key while a new key encrypts (key rotation)', async () => {
    const t = token(h.clock, 60_000);
    await h.store.put(ref, t);
    const client = createRedisClient({ mode: 'standalone', url: requireTestRedisUrl() }) as Redis;
    await waitUntilReady(client, 5_000);
    try {
      const rotated = new RedisTokenStore(client, new TokenCipher([keyB, keyA]), h.clock, h.prefix);
      await expectReadBack(rotated.get(ref), t);
      await rotated.put(ref, token(h.clock, 120_000, 'after-rotation'));
      expect(await h.raw.get(h.keys.token(ref))).toMatch(/^\d+\|\d+\|v1\.b\./);
    } finally {
      client.disconnect();
    }
  });

  it.each([
    [
      'a flipped ciphertext byte',
      (v: string) =>
        v.replace(
          /\.([\w-])([\w-]*)\.([\w-]+)\|$/,
          (_m, c: string, rest: string, tag: string) => `.${c === 'A' ? 'B' : 'A'}${rest}.${tag}|`,
        ),
    ],
    [
      'a longer lifetime',
      (v: string) =>
        v.replace(/^(\d+)\|(\d+)\|/, (_m, e: string, l: string) => `${e}|${Number(l) + 1000}|`),
    ],
    ['an unknown format', () => 'not-a-token-value'],
    ['the old format without a shape', (v: string) => v.slice(0, v.lastIndexOf('|'))],
  ])('counts a tampered value as absent, not as an outage: %s', async (_case, tamper) => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await h.store.put(ref, token(h.clock, 60_000));
    const key = h.keys.token(ref);
    await h.raw.set(key, tamper((await h.raw.get(key))!), 'PX', 60_000);
    await expect(h.store.get(ref)).resolves.toBeUndefined();
    const next = token(h.clock, 30_000, 'next-token');
    await expect(h.store.put(ref, next)).resolves.toBe(true);
    await expectReadBack(h.store.get(ref), next);
  });

  it('never returns a value moved to another client (client and environment are bound in)', async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await h.store.put(ref, token(h.clock, 60_000));
    await h.raw.set(h.keys.token(other), (await h.raw.get(h.keys.token(ref)))!, 'PX', 60_000);
    await expect(h.store.get(other)).resolves.toBeUndefined();
  });

  it('never returns a value whose clear shape was changed (the shape is bound in)', async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const narrow = { ...ref, shape: 'narrow-shape' };
    await h.store.put({ ...ref, shape: 'wide-shape' }, token(h.clock, 60_000));
    const key = h.keys.token(ref);
    const raw = (await h.raw.get(key))!;
    await h.raw.set(key, raw.replace(/\|wide-shape$/, '|narrow-shape'), 'PX', 60_000);
    await expect(h.store.get(narrow)).resolves.toBeUndefined();
  });

  it('heals a lock key left without a TTL: the next take gives it one, and it expires', async () => {
    const lockKey = h.keys.lock(ref);
    await h.raw.set(lockKey, 'left-behind');
    await expect(h.store.acquireLock(ref, 'me', 300)).resolves.toBe(false);
    const ttl = await h.raw.pttl(lockKey);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    await new Promise((r) => setTimeout(r, 400));
    await expect(h.store.acquireLock(ref, 'me', 300)).resolves.toBe(true);
  });

  it('fails fast with StoreUnavailableError when Redis is unreachable', async () => {
    const client = createRedisClient({ mode: 'standalone', url: 'redis://127.0.0.1:1' }) as Redis;
    const store = new RedisTokenStore(client, new TokenCipher([keyA]), new SystemClock(), 'x:');
    const started = Date.now();
    await expect(store.get(ref)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.put(ref, token(new SystemClock(), 60_000))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    client.disconnect();
  });
});

/**
 * Which clock decides (README "Which clock decides what"): a writer sends a remaining life
 * measured on its monotonic clock, Redis stamps the expiry in its own time, a reader gets the
 * remaining life (PTTL). No replica's wall clock enters a stored token's life.
 */
describe('RedisTokenStore time', () => {
  let h: Awaited<ReturnType<typeof redisHarness>>;
  const extra: Redis[] = [];
  beforeEach(async () => {
    h = await redisHarness();
  });
  afterEach(async () => {
    for (const c of extra.splice(0)) c.disconnect();
    await h.close();
  });

  /** A second store on the same keys whose wall clock is `skewMs` off (its monotonic is not). */
  async function writerWithWallSkew(
    skewMs: number,
  ): Promise<{ store: RedisTokenStore; clock: TestClock }> {
    const clock = new TestClock({ start: Date.now() });
    clock.skewWall(skewMs);
    const client = createRedisClient({ mode: 'standalone', url: requireTestRedisUrl() }) as Redis;
    extra.push(client);
    await waitUntilReady(client, 5_000);
    return { store: new RedisTokenStore(client, new TokenCipher([keyA]), clock, h.prefix), clock };
  }

  it.each([
    ['5 minutes ahead', 300_000],
    ['5 minutes behind', -300_000],
  ])(
    'a writer whose wall clock is %s stores the token for its real remaining life',
    async (_c, skew) => {
      const w = await writerWithWallSkew(skew);
      const t = token(w.clock, 60_000, 'skewed-writer-token');
      await expect(w.store.put(ref, t)).resolves.toBe(true);
      const ttl = (await h.ttlMs(ref))!;
      expect(ttl).toBeLessThanOrEqual(60_000);
      expect(ttl).toBeGreaterThan(59_000);
      // A correct reader: the same remaining life on its own monotonic clock.
      const read = (await h.store.get(ref))!;
      expect(read.accessToken).toBe('skewed-writer-token');
      expect(read.expiresAt - h.clock.monotonic()).toBeLessThanOrEqual(60_000);
      expect(read.expiresAt - h.clock.monotonic()).toBeGreaterThan(59_000);
    },
  );

  it('the fence compares in Redis time: a writer 5 minutes ahead does not hold the slot against a later token', async () => {
    const ahead = await writerWithWallSkew(300_000);
    await expect(
      ahead.store.put(ref, token(ahead.clock, 60_000, 'from-the-fast-clock')),
    ).resolves.toBe(true);
    const later = token(h.clock, 120_000, 'later-from-a-correct-clock');
    await expect(h.store.put(ref, later)).resolves.toBe(true);
    await expectReadBack(h.store.get(ref), later);
    // ... and a writer 5 minutes behind cannot replace it with an earlier one.
    const behind = await writerWithWallSkew(-300_000);
    await expect(behind.store.put(ref, token(behind.clock, 90_000, 'earlier'))).resolves.toBe(
      false,
    );
  });

  it('a write that reaches Redis late counts the life from when it was sent, and one whose token died on the way is refused', async () => {
    // The writer sent 3 s before Redis runs the write (a stalled process, a held connection):
    // its send time in Redis's time says so (wall clock, skew measured as 0).
    const clock = new TestClock({ start: Date.now() });
    clock.skewWall(-3_000);
    const skew = new ClockSkew();
    skew.record(0);
    const client = createRedisClient({ mode: 'standalone', url: requireTestRedisUrl() }) as Redis;
    extra.push(client);
    await waitUntilReady(client, 5_000);
    const late = new RedisTokenStore(client, new TokenCipher([keyA]), clock, h.prefix, skew);
    await expect(late.put(ref, token(clock, 60_000, 'late-write'))).resolves.toBe(true);
    const ttl = (await h.ttlMs(ref))!;
    expect(ttl).toBeLessThanOrEqual(57_000);
    expect(ttl).toBeGreaterThan(56_000);
    await expect(late.put(other, token(clock, 2_000, 'died-on-the-way'))).resolves.toBe(false);
    await expect(h.store.get(other)).resolves.toBeUndefined();
  });

  it('a TTL raised by hand does not give a token more than its authenticated lifetime', async () => {
    const t = token(h.clock, 2_000, 'short-token');
    await h.store.put(ref, t);
    await h.raw.pexpire(h.keys.token(ref), 600_000);
    const read = (await h.store.get(ref))!;
    expect(read.expiresAt).toBeLessThanOrEqual(h.clock.monotonic() + 2_000);
  });

  it('records a revocation marker for the remaining life, whatever the revoker’s wall clock', async () => {
    const behind = await writerWithWallSkew(-300_000);
    const t = token(behind.clock, 60_000, 'revoked-by-a-slow-clock');
    await behind.store.revoke(ref, tokenSha256(t.accessToken), t.expiresAt);
    const ttl = await h.raw.pttl(h.keys.revoked(ref));
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(ttl).toBeGreaterThan(59_000);
  });

  it('gives Redis TIME as the reference time', async () => {
    const before = Date.now();
    const reference = await h.store.referenceTime();
    expect(reference).toBeGreaterThanOrEqual(before - 1_000);
    expect(reference).toBeLessThanOrEqual(Date.now() + 1_000);
  });
});
