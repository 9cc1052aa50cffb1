import { tokenFingerprint } from '@app/observability';
import { debugDump, lockTtlMsFor, nextTapRequest, note, postJson, useFleet } from './fleet';
import { sha256Hex, sleep, type TapRecord, waitFor } from '../support';

/**
 * A replica draining after SIGTERM (README "Shutdown") keeps what must outlive the shutdown of
 * the background jobs ticking (libs/periodic `createThroughDrain`): the extension of a refresh
 * lock it holds, so no other replica calls the IdP for that client while its fetch finishes,
 * and the fleet heartbeat (README "Fleet-wide invalidation"), so its channel stays confirmed
 * for the requests it still answers. Two processes on one Redis, each reaching the IdP through
 * its own tap (every token request attributed).
 *
 * The lock TTL derives from the IdP timeout (timeoutMs × 3 + 2 s) so that one fetch of up to
 * three attempts fits in it: only a fetch that waits out a Retry-After outlives it (README
 * "Refresh and single flight"). So the holder's first attempt is answered 503 with a
 * Retry-After longer than the lock's life: a SIGTERM right after it lands in the middle of the
 * fetch, and the lock would expire during the drain unless it is still extended.
 */
const CLIENT = 'drain.client';
const TIMEOUT_MS = 500;
const LOCK_TTL_MS = lockTtlMsFor(TIMEOUT_MS); // 3.5 s
/** Longer than the lock's life by 1.5 s: the fetch ends well after an unextended lock expired. */
const RETRY_AFTER_S = 5;
/** README "Fleet-wide invalidation": a heartbeat every 150 ms; a gap over 600 ms unconfirms the channel. */
const HEARTBEAT_MS = 150;
const CONFIRM_WINDOW_MS = 600;

/** A token's fingerprint, as the service logs it: a failure message shows no token. */
const fingerprint = (token: unknown): string =>
  typeof token === 'string' ? tokenFingerprint(token) : `not a token: ${typeof token}`;

describe('fleet: a replica draining after SIGTERM keeps its refresh lock and its heartbeat', () => {
  const suite = useFleet([CLIENT], {
    size: 2,
    expiresIn: 1200, // nothing refreshes by itself during the test
    timeoutMs: TIMEOUT_MS,
    refresh: { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
    taps: true,
    warm: true,
  });

  it('a holder whose fetch is in flight at SIGTERM extends its lock through the drain: the other replica waits for its token and never calls the IdP', async () => {
    const f = suite.fleet;
    const [holder, other] = f.replicas;
    const startedAt = Date.now();
    const lockKey = f.lockKey(CLIENT);

    // The fleet's channel, heard from the outside: every heartbeat, by its sender's process
    // (a replica id is `<host>-<pid>-<random>`).
    const beats: { from: string; at: number }[] = [];
    const listener = f.redis.duplicate({ enableOfflineQueue: true });
    listener.on('message', (_channel: string, text: string) => {
      const message = JSON.parse(text) as { type?: string; from?: string };
      if (message.type === 'heartbeat' && typeof message.from === 'string')
        beats.push({ from: message.from, at: Date.now() });
    });
    await listener.subscribe(`${f.keyPrefix}fleet`);
    const holderBeats = (): number[] =>
      beats.filter((b) => b.from.includes(`-${holder.pid}-`)).map((b) => b.at);

    // The lock, watched from the outside every 25 ms.
    const lockSamples: { at: number; owner: string | null }[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const owner = await f.redis.get(lockKey).catch(() => 'unreadable');
        lockSamples.push({ at: Date.now(), owner });
        await sleep(25);
      }
    })();

    try {
      // Both replicas hold the warm-up token.
      const warm = await Promise.all([f.getToken(holder, CLIENT), f.getToken(other, CLIENT)]);
      expect(warm.map((a) => a.status)).toEqual([200, 200]);
      const old = warm[0].body.access_token as string;
      expect(fingerprint(warm[1].body.access_token)).toBe(fingerprint(old));
      await waitFor('the holder heartbeat', () => holderBeats().length > 0, 2_000);

      // A downstream API refused it: the holder revokes it for the fleet (the other replica drops
      // its copy, the stored one is deleted) and fetches the new one under the lock. The IdP
      // answers its first attempt 503 with a Retry-After, which the holder waits out.
      suite.idp.resetStats();
      suite.idp.setFault({ mode: 'status_503', retryAfter: RETRY_AFTER_S, count: 1 });
      const firstAttempt = nextTapRequest(f, CLIENT, 5_000);
      const report = postJson(holder, `/tokens/${CLIENT}/rejections`, {
        token_sha256: sha256Hex(old),
      }).then((answer) => ({ ...answer, answeredAt: Date.now() }));
      const refused: TapRecord = await firstAttempt;
      const refusedAt = await waitFor(
        'the 503 to reach the holder',
        () => refused.endedAt,
        2_000,
        5,
      );
      const owner = await f.redis.get(lockKey);
      expect(owner).toEqual(expect.any(String));
      expect(await f.redis.get(f.tokenKey(CLIENT))).toBeNull();

      // SIGTERM while the holder waits out the Retry-After; then the other replica is asked for
      // the client it no longer holds a token for.
      holder.kill('SIGTERM');
      const sigtermAt = Date.now();
      const asked = f
        .getToken(other, CLIENT)
        .then((answer) => ({ ...answer, answeredAt: Date.now() }));

      const [reported, answered, exit] = await Promise.all([report, asked, holder.exited]);
      const lockAfterExit = await f.redis.get(lockKey);
      watching = false;
      await watch;

      debugDump(f, CLIENT, startedAt, 'drain');
      const heldUntil = Math.max(
        ...lockSamples.filter((s) => s.at >= refused.at && s.owner !== null).map((s) => s.at),
      );
      const during = holderBeats().filter((at) => at > sigtermAt && at < reported.answeredAt);
      const edges = [sigtermAt, ...during, reported.answeredAt];
      // Beats are timed on arrival in this process, so a stall of this process (two jest workers
      // on two cores) would read as a gap in the holder's beats. Its own 25-ms lock samples show
      // such a stall: what exceeds their cadence plus a round trip (50 ms) is taken off.
      const ownStallWithin = (from: number, to: number): number => {
        let longest = 0;
        for (let i = 1; i < lockSamples.length; i++) {
          const start = Math.max(lockSamples[i - 1].at, from);
          const end = Math.min(lockSamples[i].at, to);
          if (end > start) longest = Math.max(longest, end - start - 50);
        }
        return longest;
      };
      const rawBeatGaps = edges.slice(1).map((at, i) => at - edges[i]);
      const longestBeatGap = Math.max(
        ...rawBeatGaps.map((gap, i) => gap - ownStallWithin(edges[i], edges[i + 1])),
      );
      note('drain', {
        sigtermAfter503Ms: sigtermAt - refusedAt,
        holderAnsweredMs: reported.answeredAt - sigtermAt,
        otherAnsweredMs: answered.answeredAt - sigtermAt,
        lockHeldMs: heldUntil - sigtermAt,
        beats: during.length,
        longestBeatGap,
        longestRawBeatGap: Math.max(...rawBeatGaps),
      });
      // One fetch for the fleet, the holder's: its 503 and its attempt after the Retry-After.
      // The other replica sent the IdP nothing.
      const sent = f.taps
        .flatMap((t) => t.records)
        .filter((r) => r.clientId === CLIENT && r.at >= refused.at)
        .sort((a, b) => a.at - b.at);
      expect(sent.map((r) => `${r.replica} ${r.status}`)).toEqual([
        `${holder.name} 503`,
        `${holder.name} 200`,
      ]);
      expect(suite.idp.stats()).toMatchObject({ tokenRequests: 2, issued: 1, faulted: 1 });

      // The holder answered its in-flight request during the drain, after the life of an
      // unextended lock, and exited 0; the other replica answered with the token it stored.
      expect(reported.status).toBe(200);
      expect(reported.answeredAt - sigtermAt).toBeGreaterThan(LOCK_TTL_MS);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(answered.status).toBe(200);
      const fresh = fingerprint(reported.body.access_token);
      expect(fresh).not.toBe(fingerprint(old));
      expect(fingerprint(answered.body.access_token)).toBe(fresh);

      // The lock was the holder's throughout, past the moment an unextended one would have
      // expired (at most LOCK_TTL_MS after SIGTERM; 250 ms for a sample's own round trip), and
      // released once its token was stored.
      expect(heldUntil - sigtermAt).toBeGreaterThan(LOCK_TTL_MS + 250);
      const notTheHolders = lockSamples.filter(
        (s) => s.at >= refused.at && s.at <= heldUntil && s.owner !== owner,
      );
      expect(notTheHolders).toEqual([]);
      expect(lockAfterExit).toBeNull();

      // The holder's heartbeat kept being published through the drain, never more than the
      // confirm window apart, until its last in-flight request was answered.
      expect(longestBeatGap).toBeLessThan(CONFIRM_WINDOW_MS);
      expect(during.length).toBeGreaterThan((reported.answeredAt - sigtermAt) / HEARTBEAT_MS / 2);
    } catch (e) {
      debugDump(f, CLIENT, startedAt, 'FAILED: drain', true);
      throw e;
    } finally {
      watching = false;
      await watch;
      listener.disconnect();
    }
  }, 30_000);
});
