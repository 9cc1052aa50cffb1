import type { RunningSandbox } from '@app/identity-sandbox';
import { EXPIRY_TIE_MS } from '@app/token-store';
import {
  debugDump,
  fencedWriteExpiryOf,
  failuresOf,
  lockTtlMsFor,
  note,
  nextTapRequest,
  obtainedLines,
  parseRespCommands,
  retriedAttempts,
  secondsWithoutAnswer,
  startLoad,
  summarize,
  watchStoredExpiry,
  useFleet,
} from './fleet';
import { type Fleet, type Replica, sleep, waitFor } from '../support';

/**
 * The replica holding a client's refresh lock stalls (SIGSTOP) or dies (SIGKILL) in the middle
 * of a refresh. Each replica reaches the IdP through its own tap, so the test knows which one
 * sent the token request (only the lock holder fetches), and reaches Redis through its own
 * relay, whose client-to-Redis direction can be held. The IdP answers in 250 ms, so the refresh
 * is in flight when the signal lands.
 *
 * Tokens live ~11 s (expires_in 12), refresh at a quarter of their life (2.5-2.75 s), IdP
 * timeout 500 ms, so the lock TTL is 3.5 s: a take-over after the lock expired still finishes
 * with several seconds of the old token left, and callers never go without one.
 */
const PAUSED_CLIENT = 'paused.client';
const FENCED_CLIENT = 'fenced.client';
const KILLED_CLIENT = 'killed.client';
const CLIENTS = [PAUSED_CLIENT, FENCED_CLIENT, KILLED_CLIENT];
const EXPIRES_IN = 12;
const MIN_TTL = 1;
const TIMEOUT_MS = 500;
const LOCK_TTL_MS = lockTtlMsFor(TIMEOUT_MS);
const SLOW_MS = 250;

describe('fleet: the refresh lock holder stalls or dies', () => {
  let idp: RunningSandbox;
  let fleet: Fleet | undefined;
  useFleet(
    CLIENTS,
    {
      expiresIn: EXPIRES_IN,
      timeoutMs: TIMEOUT_MS,
      refresh: { ratio: 0.25, minTtlSeconds: MIN_TTL },
      taps: true,
      redisLinks: true,
      warm: true,
    },
    (suite) => ({ idp, fleet } = suite),
  );

  const byName = (f: Fleet, name: string): Replica => f.replicas.find((r) => r.name === name)!;
  const indexOf = (f: Fleet, name: string): number => f.replicas.findIndex((r) => r.name === name);
  const newerThan = (f: Fleet, clientId: string, before: number) => async () => {
    const e = await f.storedExpiry(clientId);
    return e !== undefined && e > before ? e : undefined;
  };

  it('holder paused (SIGSTOP) mid-fetch past its lock TTL: another replica takes over, and after SIGCONT the stored expiry never went backwards', async () => {
    const f = fleet!;
    const startedAt = Date.now();
    const watcher = watchStoredExpiry(f, PAUSED_CLIENT, 20);
    let paused: Replica | undefined;
    const load = startLoad(
      f,
      () => f.replicas.filter((r) => r !== paused && r.alive),
      PAUSED_CLIENT,
      20,
    );
    try {
      const before = (await f.storedExpiry(PAUSED_CLIENT))!;
      idp.setFault({ mode: 'slow', delayMs: SLOW_MS });
      // The next refresh: pause its sender (the lock holder) while its IdP request is in flight.
      const held = await nextTapRequest(
        f,
        PAUSED_CLIENT,
        15_000,
        () => true,
        (record) => {
          paused = byName(f, record.replica);
          paused.kill('SIGSTOP');
        },
      );
      const pausedAt = Date.now();
      const holder = paused!;
      expect(await f.redis.get(f.lockKey(PAUSED_CLIENT))).not.toBeNull();

      // Another replica takes the lock once it expired, fetches and stores a newer token.
      const takeover = await nextTapRequest(
        f,
        PAUSED_CLIENT,
        LOCK_TTL_MS + 3_000,
        (r) => r.replica !== held.replica,
      );
      const stored = await waitFor(
        'the take-over token in Redis',
        newerThan(f, PAUSED_CLIENT, before),
        5_000,
        10,
      );
      await sleep(200);
      const pauseMs = Date.now() - pausedAt;
      const obtainedBefore = obtainedLines(holder, PAUSED_CLIENT).length;
      const resumedAt = Date.now();
      holder.kill('SIGCONT');
      // The resumed holder ends its refresh. Its lock watchdog finds the lock lost and aborts
      // the fetch, adopting the take-over's token ('refresh lock lost'); if its IdP call had
      // already outlived timeoutMs and been answered by a retry first, it may instead have
      // obtained a token of its own, which the fence keeps only if it expires later.
      await waitFor(
        'the resumed holder to finish its refresh',
        () =>
          obtainedLines(holder, PAUSED_CLIENT).length > obtainedBefore ||
          holder
            .entries()
            .some(
              (e) =>
                (e.msg === 'token refresh failed' ||
                  e.msg === 'refresh lock lost; using the token of the replica that took over') &&
                e.clientId === PAUSED_CLIENT &&
                Date.parse(String(e.time)) >= resumedAt,
            ),
        5_000,
      );
      const resumed = obtainedLines(holder, PAUSED_CLIENT)[obtainedBefore] as
        { expiresAt: number } | undefined;
      paused = undefined; // back in the load rotation
      await sleep(500);
      await watcher.stop();
      const results = await load.stop();
      debugDump(
        f,
        PAUSED_CLIENT,
        pausedAt - 1000,
        `paused ${held.replica}, resumed after ${pauseMs} ms`,
      );
      note('paused mid-fetch', {
        pauseMs,
        takeoverMs: takeover.at - pausedAt,
        resumedObtained: resumed && resumed.expiresAt - stored,
        holderRetries: retriedAttempts([holder], PAUSED_CLIENT, resumedAt),
      });

      expect(pauseMs).toBeGreaterThan(LOCK_TTL_MS);
      expect(takeover.at - pausedAt).toBeLessThan(LOCK_TTL_MS + 1_000);
      expect(watcher.regressions()).toEqual([]);
      expect(watcher.distinct()[0]).toBe(before);
      expect(watcher.distinct()).toContain(stored);
      // Whatever the resumed holder obtained reached Redis only if it expires later than the
      // token stored then: the stored expiry only ever moved forward.
      if (resumed && resumed.expiresAt < stored) {
        expect(watcher.distinct()).not.toContain(resumed.expiresAt);
      }
      expect(watcher.samples.length).toBeGreaterThan(pauseMs / 40);
      expect(watcher.errors).toBe(0);
      expect(summarize(failuresOf(results, MIN_TTL))).toBe('[]');
      // The other replicas served throughout the pause: each answered in every second of it (a
      // count of answers would measure the load's timer, which drifts on a busy machine).
      const others = f.replicas.filter((r) => r !== holder);
      expect(secondsWithoutAnswer(results, others, pausedAt, resumedAt)).toEqual([]);
    } catch (e) {
      debugDump(f, PAUSED_CLIENT, startedAt - 1000, 'FAILED: paused mid-fetch', true);
      throw e;
    } finally {
      paused?.kill('SIGCONT');
      await watcher.stop();
      await load.stop();
    }
  }, 60_000);

  it("holder paused (SIGSTOP) with its token write in flight past its lock TTL: the late write reaches Redis after the take-over's and the fence refuses it", async () => {
    const f = fleet!;
    const startedAt = Date.now();
    const watcher = watchStoredExpiry(f, FENCED_CLIENT, 20);
    let paused: Replica | undefined;
    const load = startLoad(
      f,
      () => f.replicas.filter((r) => r !== paused && r.alive),
      FENCED_CLIENT,
      20,
    );
    try {
      const before = (await f.storedExpiry(FENCED_CLIENT))!;
      const tokenKey = f.tokenKey(FENCED_CLIENT);
      idp.setFault({ mode: 'slow', delayMs: SLOW_MS });
      // The lock holder's IdP request is in flight: from now on its bytes to Redis are held.
      const held = await nextTapRequest(
        f,
        FENCED_CLIENT,
        15_000,
        () => true,
        (record) => {
          f.redisLinks[indexOf(f, record.replica)].hold();
        },
      );
      // The token the holder's refresh replaces, which `before` is not always: the fleet
      // refreshes this client every ~2.75 s (a quarter of its life), so `before` may have been
      // read while the previous refresh, whose IdP request went out before this test listened on
      // the tap, was still on its way to Redis. That refresh wrote under its lock and released
      // the lock only after its write, so it landed before the holder took the lock; from the
      // holder's IdP request until its lock expires no other replica writes.
      const replaced = (await f.storedExpiry(FENCED_CLIENT))!;
      expect(replaced).toBeGreaterThanOrEqual(before);
      const link = f.redisLinks[indexOf(f, held.replica)];
      const holder = byName(f, held.replica);
      // It gets the IdP's answer and sends its fenced write, which stays in the relay; then
      // it stalls.
      const write = await waitFor(
        'the holder to send its token write',
        () =>
          parseRespCommands(link.held()).find(
            (args) => fencedWriteExpiryOf(args, tokenKey) !== undefined,
          ),
        5_000,
        5,
      );
      holder.kill('SIGSTOP');
      paused = holder;
      const pausedAt = Date.now();
      // The write carries a remaining life and its send time, not an expiry: what it would stamp.
      const lateExpiry = fencedWriteExpiryOf(write, tokenKey)!;
      expect(lateExpiry).toBeGreaterThan(replaced);

      // Its lock runs out; another replica refreshes and stores a token expiring later.
      const takeover = await nextTapRequest(
        f,
        FENCED_CLIENT,
        LOCK_TTL_MS + 3_000,
        (r) => r.replica !== held.replica,
      );
      const stored = await waitFor(
        'the take-over token in Redis',
        newerThan(f, FENCED_CLIENT, replaced),
        5_000,
        10,
      );
      // It is the take-over replica's token: the expiry it obtained, in its wall time, is the
      // one Redis stamped, up to its measured skew (README "Which clock decides what").
      const takenOver = await waitFor(
        'the take-over replica to log its token',
        () =>
          obtainedLines(byName(f, takeover.replica), FENCED_CLIENT).find(
            (line) => line.time >= takeover.at,
          ),
        5_000,
      );
      expect(Math.abs(takenOver.expiresAt - stored)).toBeLessThan(EXPIRY_TIE_MS);
      expect(stored).toBeGreaterThan(lateExpiry);

      // The late write reaches Redis now, and the holder resumes.
      const released = parseRespCommands(link.release());
      expect(released.some((args) => fencedWriteExpiryOf(args, tokenKey) === lateExpiry)).toBe(
        true,
      );
      const pauseMs = Date.now() - pausedAt;
      holder.kill('SIGCONT');
      paused = undefined;
      await sleep(600);
      await watcher.stop();
      const results = await load.stop();
      debugDump(
        f,
        FENCED_CLIENT,
        pausedAt - 1000,
        `write held for ${held.replica}, paused ${pauseMs} ms`,
      );
      note('paused with write in flight', {
        pauseMs,
        takeoverMs: takeover.at - held.at,
        lateBehindBy: stored - lateExpiry,
      });

      expect(pauseMs).toBeGreaterThan(LOCK_TTL_MS - 1_000);
      expect(takeover.at - held.at).toBeLessThan(LOCK_TTL_MS + 1_000);
      expect(await f.storedExpiry(FENCED_CLIENT)).toBe(stored); // refused: the take-over's token stays
      expect(watcher.distinct()).not.toContain(lateExpiry);
      // Only the token the refresh replaced (after the one in flight at the start, if any) and
      // the take-over's were ever stored.
      expect(watcher.distinct()).toEqual(
        replaced === before ? [before, stored] : [before, replaced, stored],
      );
      expect(watcher.regressions()).toEqual([]);
      expect(watcher.errors).toBe(0);
      expect(holder.alive).toBe(true);
      expect((await f.getToken(holder, FENCED_CLIENT)).status).toBe(200);
      expect(summarize(failuresOf(results, MIN_TTL))).toBe('[]');
      // The other replicas served throughout the pause: each answered in every second of it (a
      // count of answers would measure the load's timer, which drifts on a busy machine).
      const others = f.replicas.filter((r) => r !== holder);
      expect(secondsWithoutAnswer(results, others, pausedAt, pausedAt + pauseMs)).toEqual([]);
    } catch (e) {
      debugDump(f, FENCED_CLIENT, startedAt - 1000, 'FAILED: write in flight', true);
      throw e;
    } finally {
      for (const l of f.redisLinks) l.release();
      paused?.kill('SIGCONT');
      await watcher.stop();
      await load.stop();
    }
  }, 60_000);

  it('holder killed (SIGKILL) mid-refresh: another replica refreshes within the lock TTL; callers on the survivors see no failure', async () => {
    const f = fleet!;
    const startedAt = Date.now();
    let killed: Replica | undefined;
    const survivors = (): Replica[] => f.replicas.filter((r) => r !== killed && r.alive);
    const load = startLoad(f, survivors, KILLED_CLIENT, 20);
    try {
      const before = (await f.storedExpiry(KILLED_CLIENT))!;
      expect(before).toBeGreaterThan(Date.now());
      idp.setFault({ mode: 'slow', delayMs: SLOW_MS });
      const held = await nextTapRequest(
        f,
        KILLED_CLIENT,
        15_000,
        () => true,
        (record) => {
          killed = byName(f, record.replica);
          killed.kill('SIGKILL');
        },
      );
      const killedAt = Date.now();
      const exit = await killed!.exited;
      expect(exit.signal).toBe('SIGKILL');
      // Its lock stays behind until its PX runs out (no watchdog extension since).
      expect(await f.redis.get(f.lockKey(KILLED_CLIENT))).not.toBeNull();
      expect(await f.redis.pttl(f.lockKey(KILLED_CLIENT))).toBeLessThanOrEqual(LOCK_TTL_MS);

      const takeover = await nextTapRequest(
        f,
        KILLED_CLIENT,
        LOCK_TTL_MS + 3_000,
        (r) => r.replica !== held.replica,
      );
      const stored = await waitFor(
        'the take-over token in Redis',
        newerThan(f, KILLED_CLIENT, before),
        5_000,
        10,
      );
      const storedMs = Date.now() - killedAt;
      await sleep(500);
      const loadTo = Date.now();
      const results = await load.stop();
      debugDump(f, KILLED_CLIENT, killedAt - 1000, `killed ${held.replica}`);
      note('killed', { takeoverMs: takeover.at - killedAt, storedMs });

      expect(takeover.at - killedAt).toBeLessThan(LOCK_TTL_MS + 1_000);
      expect(storedMs).toBeLessThan(LOCK_TTL_MS + 2_000);
      expect(stored).toBeGreaterThan(before);
      // One take-over for the fleet: the other survivor read the winner's token.
      const survivorFetches = f.taps
        .flatMap((t) => t.records)
        .filter(
          (r) =>
            r !== held &&
            r.clientId === KILLED_CLIENT &&
            r.at >= held.at &&
            r.at <= killedAt + storedMs,
        );
      expect([...new Set(survivorFetches.map((r) => r.replica))]).toEqual([takeover.replica]);
      // (More than one only if its attempt timed out and was retried: the same fetch.)
      const takeoverRetries = retriedAttempts(f.replicas, KILLED_CLIENT, held.at).timeout ?? 0;
      expect(survivorFetches).toHaveLength(1 + takeoverRetries);
      const onSurvivors = results.filter((r) => r.replica !== held.replica);
      expect(summarize(failuresOf(onSurvivors, MIN_TTL))).toBe('[]');
      expect(new Set(onSurvivors.map((r) => r.replica)).size).toBe(2);
      // The survivors served throughout, from the kill to the end of the load: each answered in
      // every second of it (a count of answers would measure the load's timer, which drifts on
      // a busy machine).
      expect(secondsWithoutAnswer(results, survivors(), killedAt, loadTo)).toEqual([]);
    } catch (e) {
      debugDump(f, KILLED_CLIENT, startedAt - 1000, 'FAILED: killed mid-refresh', true);
      throw e;
    } finally {
      await load.stop();
    }
  }, 60_000);
});
