import { renameSync, writeFileSync } from 'node:fs';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { lockTtlMsFor, PROPAGATION_MS, postJson, startLoad } from '../fleet/fleet';
import {
  CALLER_KEY,
  type Fleet,
  killAllReplicas,
  type Replica,
  sandboxClients,
  sha256Hex,
  sleep,
  startRedisServer,
  startService,
  type ThrowawayRedis,
  type TokenAnswer,
  waitFor,
} from '../support';

/**
 * The chaos run (README "The chaos run"): 3 replicas (the production entry point) on one
 * throwaway Redis in front of the sandbox IdP with short tokens, steady caller load, and faults
 * drawn from a seeded PRNG. A fault starts 0.3–1.5 s after the previous one (now and then after
 * a calm of 9–12 s) whether or not the previous ones have ended, so faults overlap (up to MAX_FAULTS_IN_EFFECT at once); two faults on the same thing (a
 * replica, Redis, the IdP, the secret) take turns. The same seed draws the same faults in the same
 * order with the same targets and durations (wall-clock timing, and so which faults overlap,
 * still varies), so a failing seed replays.
 */

export const CLIENT = 'chaos.client';
/** Short tokens, so scheduled refreshes happen during a run. */
export const TOKEN_LIFE_SECONDS = 20;
const REFRESH_RATIO = 0.5;
const TIMEOUT_MS = 1_000;
/** The OAuth client's attempts per fetch (token-fetcher.ts). */
const ATTEMPTS_PER_FETCH = 3;
/**
 * How long after a fault ends the fleet is given to recover before a caller failure counts: the
 * refresh lock a paused or killed replica may hold lives lockTtl; Redis and IdP retries back
 * off for a few seconds.
 */
export const RECOVERY_MS = lockTtlMsFor(TIMEOUT_MS) + 3_000;
/** How long a replica that was paused or restarted is given to catch up before its answers count. */
export const REPLICA_RECOVERY_MS = 2_000;
/** How long a replica waits for the other replicas' answers to a revocation (fleet-channel.ts). */
const FLEET_ACK_WAIT_MS = 1_000;
/** At most this many faults are in effect at once; the next one waits for one to end. */
export const MAX_FAULTS_IN_EFFECT = 3;
/** How often the gap after a fault is a calm (longer than RECOVERY_MS) rather than 0.3–1.5 s. */
export const CALM_PROBABILITY = 0.2;
/** How long a secret rotation may take to be adopted by every replica before the run says so. */
const ROTATION_ADOPTION_TIMEOUT_MS = 20_000;

export type FaultKind =
  | 'pause'
  | 'pause-and-revoke'
  | 'kill-replica'
  | 'kill-redis'
  | 'idp-5xx'
  | 'idp-timeout'
  | 'admin-refresh'
  | 'rejection'
  | 'secret-rotation';

export const FAULT_KINDS: readonly FaultKind[] = [
  'pause',
  'pause-and-revoke',
  'kill-replica',
  'kill-redis',
  'idp-5xx',
  'idp-timeout',
  'admin-refresh',
  'rejection',
  'secret-rotation',
];

/** One fault as drawn: everything random about it, drawn before it starts (see drawFault). */
export interface FaultPlan {
  kind: FaultKind;
  /** The replica it targets (pause, kill, revocations go through it). */
  index: number;
  /** How long it lasts (pause, Redis down, IdP fault) or the gap between a rotation's two steps. */
  ms: number;
  /** IdP faults: the sandbox's fault mode. */
  mode: 'status_500' | 'status_503' | 'timeout';
  /** pause-and-revoke: how the revocation is sent. */
  revokeVia: 'admin-refresh' | 'rejection';
  /** secret-rotation: which side gets the new secret first (README "Rotation and reload"). */
  order: 'idp-first' | 'disk-first';
  /** How long after this fault starts the next one is drawn and started (0.3–1.5 s, or a calm). */
  gapMs: number;
}

/**
 * Draws one fault: a fixed number of draws per fault, whatever its kind, so the sequence of
 * faults depends on the seed only.
 */
export function drawFault(random: () => number, replicas: number): FaultPlan {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const between = (min: number, max: number): number => Math.round(min + random() * (max - min));
  const kind = pick(FAULT_KINDS);
  const index = between(0, replicas - 1);
  const unit = random();
  const ms =
    kind === 'idp-5xx' || kind === 'idp-timeout'
      ? Math.round(500 + unit * 2_500)
      : Math.round(300 + unit * 1_700);
  const mode = kind === 'idp-timeout' ? 'timeout' : pick(['status_500', 'status_503'] as const);
  const revokeVia = random() < 0.5 ? 'admin-refresh' : 'rejection';
  const order = random() < 0.5 ? 'idp-first' : 'disk-first';
  // Mostly storms of overlapping faults; now and then a calm longer than the recovery time, so
  // the fleet is also judged right after a storm (no answer is judged within RECOVERY_MS of a
  // fleet-wide fault).
  const calm = random() < CALM_PROBABILITY;
  const stormGap = between(300, 1_500);
  const calmGap = between(RECOVERY_MS + 1_000, RECOVERY_MS + 4_000);
  return { kind, index, ms, mode, revokeVia, order, gapMs: calm ? calmGap : stormGap };
}

export interface ChaosOptions {
  seed: number;
  /** How long faults keep landing (the run then lets the fleet settle for RECOVERY_MS). */
  durationMs: number;
  /** Caller requests per second, round-robin over the replicas that are running. */
  ratePerSecond?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** A fault that made the fleet or one replica unable to serve for a while: [from, to]. */
export interface Disturbance {
  kind: FaultKind;
  from: number;
  to: number;
  /**
   * The replica it hit, if one: requests to it are disturbed until REPLICA_RECOVERY_MS after;
   * requests to the others only when `fleetWide`.
   */
  replica?: string;
  /** Disturbs every replica until RECOVERY_MS after it ended. */
  fleetWide: boolean;
  /**
   * A revocation sent while it is in effect may leave the fleet without a token it can fetch
   * until it ends: a replica paused while the refresh lock was held may hold it; during a
   * rotation the IdP may refuse the secret in use before the new one is adopted. Such a revocation disturbs every
   * replica from when it was sent until RECOVERY_MS after this ends.
   */
  blocksFetches?: boolean;
}

/** A revocation request sent (admin refresh or rejection report), whatever its answer. */
export interface RevocationAttempt {
  /** When the request was sent; for a recorded admin refresh, the earliest it can have revoked. */
  sentAt: number;
  answeredAt: number;
}

export interface Revocation extends RevocationAttempt {
  /** SHA-256 hex of the revoked token, or its first 8 hex digits (the admin answer's fingerprint). */
  sha256Prefix: string;
  via: 'admin-refresh' | 'rejection';
  /**
   * The revocation reached the store (the durable marker was written). One that did not (Redis
   * was down) revoked the token on the replica asked only, as its answer says, and is not judged.
   */
  durable: boolean;
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  faults: { kind: FaultKind; at: number; detail: string }[];
  /** The most faults in effect at one moment. */
  maxOverlap: number;
  requests: number;
  /** Answers judged by the failure check (sent while a valid token existed, see below). */
  judged: number;
  revocations: Revocation[];
  /** Revocations the revoked-token check judged (see judge). */
  revocationsJudged: number;
  /** Answers carrying a revoked token, to requests sent more than PROPAGATION_MS after its revocation. */
  revokedServed: { replica: string; at: number; via: string; lateByMs: number }[];
  /** Caller failures while a valid token existed. */
  failures: ChaosAnswer[];
  /** Caller failures during a fault or its recovery time (printed, not a failed check). */
  failuresDuringFaults: number;
  idpRequests: number;
  idpBudget: number;
  /** What went wrong in the run itself (a replica that did not restart, a rotation not adopted). */
  runErrors: string[];
  ok: boolean;
}

/** mulberry32: a small seeded PRNG, plenty for drawing faults. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Turns for the things faults act on: `hold(keys, fn)` runs fn once every key is free and keeps
 * them until it ends. Keys are taken in sorted order, so two faults never wait on each other.
 */
export class Turns {
  private readonly tails = new Map<string, Promise<void>>();

  async hold<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const releases: (() => void)[] = [];
    for (const key of sorted) {
      const previous = this.tails.get(key) ?? Promise.resolve();
      let release = (): void => undefined;
      const mine = new Promise<void>((resolve) => (release = resolve));
      this.tails.set(
        key,
        previous.then(() => mine),
      );
      releases.push(release);
      await previous;
    }
    try {
      return await fn();
    } finally {
      for (const release of releases) release();
    }
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const random = prng(options.seed);

  const redis: ThrowawayRedis = await startRedisServer();
  let idp: RunningSandbox | undefined;
  let fleet: Fleet | undefined;
  try {
    idp = await startIdentitySandbox({
      clients: sandboxClients([CLIENT]),
      expiresIn: TOKEN_LIFE_SECONDS,
    });
    const sandbox = idp;
    fleet = await startService({
      run: 'fleet',
      sandbox,
      clientIds: [CLIENT],
      timeoutMs: TIMEOUT_MS,
      refresh: { ratio: REFRESH_RATIO, minTtlSeconds: 5, minRejectionIntervalSeconds: 1 },
      admin: true,
      redis: redis.url,
    });
    const f = fleet;
    await waitFor(
      'the first token',
      async () => (await f.storedExpiry(CLIENT)) !== undefined,
      15_000,
    );
    const idpBefore = sandbox.stats().tokenRequests;

    const down = new Set<string>(); // replicas killed and not yet restarted
    const faults: ChaosReport['faults'] = [];
    const disturbances: Disturbance[] = [];
    const attempts: RevocationAttempt[] = [];
    const revocations: Revocation[] = [];
    const runErrors: string[] = [];
    const turns = new Turns();
    let restarts = 0;
    let redisRestarts = 0;
    let idpFaults = 0;
    let rotations = 0;
    let inEffect = 0;
    let maxOverlap = 0;
    const note = (kind: FaultKind, detail: string): void => {
      faults.push({ kind, at: Date.now(), detail });
      log(`[chaos] +${Date.now() - startedAt} ms ${kind} ${detail} (${inEffect} in effect)`);
    };
    const setIdpFault = async (fault: object | undefined): Promise<void> => {
      // The sandbox's control API, as an operator's test rig would drive it.
      const res = await fetch(`${sandbox.url}/_sandbox/fault`, {
        method: fault ? 'POST' : 'DELETE',
        headers: { 'content-type': 'application/json' },
        body: fault ? JSON.stringify(fault) : undefined,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`sandbox fault control answered ${res.status}`);
    };
    /** Whether the replica's `token revoked for the fleet` line in [from, to] says durable. */
    const revokedDurably = (replica: Replica, from: number, to: number): boolean => {
      const lines = replica.entries().filter((e) => {
        const at = Date.parse(String(e.time));
        return e.msg === 'token revoked for the fleet' && at >= from - 5 && at <= to + 5;
      });
      return lines.length > 0 && lines.every((e) => e.durable === true);
    };

    const revokeViaAdmin = async (through: Replica): Promise<void> => {
      const sentAt = Date.now();
      const res = await postJson(through, `/admin/clients/${CLIENT}/refresh`, undefined, 10_000);
      const answeredAt = Date.now();
      attempts.push({ sentAt, answeredAt });
      const fp = res.body.revokedTokenFingerprint;
      if (res.status === 200 && typeof fp === 'string') {
        revocations.push({
          // An admin refresh revokes once the new token is in hand (README "Fleet-wide
          // invalidation"), which may take longer than 1 s while the IdP is slow; its answer comes
          // at most FLEET_ACK_WAIT_MS (the wait for the other replicas' answers) after that.
          sentAt: Math.max(sentAt, answeredAt - FLEET_ACK_WAIT_MS),
          answeredAt,
          sha256Prefix: fp,
          via: 'admin-refresh',
          durable: res.body.revocationDurable === true,
        });
      }
      note(
        'admin-refresh',
        `via ${through.name}: ${res.status} revoked ${String(fp)}${res.body.revocationDurable === false ? ' (this replica only)' : ''}`,
      );
    };
    const revokeViaRejection = async (through: Replica): Promise<void> => {
      // Report the token this replica serves now, as a downstream API that refused it would.
      const served = await f.getToken(through, CLIENT, '', 10_000);
      const token = served.body.access_token;
      if (typeof token !== 'string')
        return note('rejection', `via ${through.name}: no token to report`);
      const requestId = `chaos-${options.seed}-${attempts.length}-${Date.now()}`;
      const sentAt = Date.now();
      const res = await fetch(`${through.url}/tokens/${CLIENT}/rejections`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${CALLER_KEY}`,
          'content-type': 'application/json',
          'x-request-id': requestId,
        },
        body: JSON.stringify({ token_sha256: sha256Hex(token) }),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      await res?.arrayBuffer();
      const answeredAt = Date.now();
      attempts.push({ sentAt, answeredAt });
      // The outcome is in the replica's audit line: 'refreshed' and 'joined' revoked the token.
      const audit = await waitFor(
        'the rejection audit line',
        () =>
          through
            .entries()
            .find((e) => e.msg === 'token rejection report' && e.requestId === requestId),
        3_000,
      ).catch(() => undefined);
      const outcome = String(audit?.outcome);
      const durable = outcome === 'joined' || revokedDurably(through, sentAt, answeredAt);
      if (res?.status === 200 && (outcome === 'refreshed' || outcome === 'joined')) {
        revocations.push({
          sentAt,
          answeredAt,
          sha256Prefix: sha256Hex(token),
          via: 'rejection',
          durable,
        });
      }
      note(
        'rejection',
        `via ${through.name}: ${res?.status ?? 'no answer'} ${outcome}${durable || outcome !== 'refreshed' ? '' : ' (this replica only)'}`,
      );
    };
    const revoke = (via: 'admin-refresh' | 'rejection', through: Replica): Promise<void> =>
      via === 'admin-refresh' ? revokeViaAdmin(through) : revokeViaRejection(through);

    /**
     * The client's secret as a replica's `GET /admin/clients` shows it: the fingerprint of the
     * secret in use (keyed with the fleet's shared encryption key, so equal secrets give equal
     * fingerprints on every replica) and whether a newer one is pending; undefined if it does not
     * answer.
     */
    const secretStateOf = async (
      r: Replica,
    ): Promise<{ fingerprint: string; pending: boolean } | undefined> => {
      try {
        const res = await fetch(`${r.url}/admin/clients`, {
          headers: { authorization: `Bearer ${CALLER_KEY}` },
          signal: AbortSignal.timeout(2_000),
        });
        const body = (await res.json()) as {
          clients?: {
            clientId: string;
            secretFingerprint: string;
            secretCandidatePending: boolean;
          }[];
        };
        const entry = body.clients?.find((c) => c.clientId === CLIENT);
        return (
          entry && { fingerprint: entry.secretFingerprint, pending: entry.secretCandidatePending }
        );
      } catch {
        return undefined;
      }
    };
    const rotateSecret = async (plan: FaultPlan): Promise<void> => {
      rotations++;
      const secret = `chaos-secret-${options.seed}-${rotations}`;
      // Every replica uses the same secret here (the previous rotation, if any, was adopted).
      const old = (await secretStateOf(f.replicas.find((r) => !down.has(r.name)) ?? f.replicas[0]))
        ?.fingerprint;
      const atIdp = async (): Promise<void> => {
        // The old secret stops working at once at this IdP.
        const res = await fetch(`${sandbox.url}/_sandbox/clients/${encodeURIComponent(CLIENT)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ secret }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`sandbox client update answered ${res.status}`);
      };
      const onDisk = (): void => {
        // Written beside and renamed over: a reader sees the old secret or the new one, never
        // a partial file (as the kubelet's `..data` swap or a config tool's atomic write).
        const path = f.secretFile(CLIENT);
        writeFileSync(`${path}.tmp`, `${secret}\n`, { mode: 0o600 });
        renameSync(`${path}.tmp`, path);
      };
      note('secret-rotation', `${plan.order}, ${plan.ms} ms between the IdP and the files`);
      if (plan.order === 'idp-first') await atIdp();
      else onDisk();
      await sleep(plan.ms);
      if (plan.order === 'idp-first') onDisk();
      else await atIdp();
      // Every running replica uses the new secret (it adopted it, or started with it): one
      // fingerprint everywhere, not the old one, nothing pending.
      const lagging: string[] = [];
      await waitFor(
        'every replica to use the new secret',
        async () => {
          const running = f.replicas.filter((r) => !down.has(r.name));
          const states = await Promise.all(running.map(secretStateOf));
          lagging.length = 0;
          const fingerprints = new Set(states.map((st) => st?.fingerprint));
          running.forEach((r, i) => {
            const st = states[i];
            if (!st || st.pending || st.fingerprint === old || fingerprints.size !== 1)
              lagging.push(r.name);
          });
          return lagging.length === 0;
        },
        ROTATION_ADOPTION_TIMEOUT_MS,
        250,
      ).catch(() =>
        runErrors.push(
          `secret rotation ${rotations}: not in use within ${ROTATION_ADOPTION_TIMEOUT_MS} ms on ${lagging.join(', ')}`,
        ),
      );
    };

    /**
     * Whether the client's refresh lock is held, asked of a replica just stopped (SIGSTOP): if it
     * is not, the stopped replica cannot hold it while stopped, nor leave it behind when killed,
     * so the fault disturbs that replica only. Unknown (Redis down) counts as held.
     */
    const lockHeld = (): Promise<boolean> =>
      f.redis.exists(f.lockKey(CLIENT)).then(
        (n) => n > 0,
        () => true,
      );

    /** Runs one fault once what it acts on is free; records what it disturbed. */
    const runFault = (plan: FaultPlan): Promise<void> => {
      const n = f.replicas.length;
      const other = (plan.index + 1) % n;
      const keys: Record<FaultKind, string[]> = {
        pause: [`replica:${plan.index}`],
        'pause-and-revoke': [`replica:${plan.index}`, `replica:${other}`],
        'kill-replica': [`replica:${plan.index}`],
        'kill-redis': ['redis'],
        'idp-5xx': ['idp'],
        'idp-timeout': ['idp'],
        'admin-refresh': [`replica:${plan.index}`],
        rejection: [`replica:${plan.index}`],
        'secret-rotation': ['secret'],
      };
      return turns.hold(keys[plan.kind], async () => {
        inEffect++;
        maxOverlap = Math.max(maxOverlap, inEffect);
        const from = Date.now();
        const target = f.replicas[plan.index];
        try {
          switch (plan.kind) {
            case 'pause':
            case 'pause-and-revoke': {
              target.kill('SIGSTOP');
              const locked = await lockHeld();
              note(
                plan.kind,
                `${target.name} for ${plan.ms} ms${locked ? ' (the lock is held)' : ''}`,
              );
              if (plan.kind === 'pause-and-revoke') {
                await sleep(100);
                await revoke(plan.revokeVia, f.replicas[other]);
              }
              await sleep(Math.max(0, from + plan.ms - Date.now()));
              target.kill('SIGCONT');
              disturbances.push({
                kind: plan.kind,
                from,
                to: Date.now(),
                replica: target.name,
                fleetWide: false,
                blocksFetches: locked,
              });
              break;
            }
            case 'kill-replica': {
              down.add(target.name);
              target.kill('SIGSTOP');
              const locked = await lockHeld();
              target.kill('SIGKILL');
              await target.exited;
              note(plan.kind, `${target.name} (restarting)${locked ? ' (the lock is held)' : ''}`);
              try {
                await f.restart(plan.index);
                restarts++;
              } catch (e) {
                runErrors.push(`${target.name} did not restart: ${(e as Error).message}`);
              } finally {
                down.delete(target.name);
              }
              // Killed mid-fetch, it leaves its refresh lock behind for lockTtl: fleet-wide.
              disturbances.push({
                kind: plan.kind,
                from,
                to: Date.now(),
                replica: target.name,
                fleetWide: locked,
              });
              break;
            }
            case 'kill-redis': {
              await redis.kill();
              note(plan.kind, `down for ${plan.ms} ms`);
              await sleep(plan.ms);
              await redis.restart();
              redisRestarts++;
              disturbances.push({ kind: plan.kind, from, to: Date.now(), fleetWide: true });
              break;
            }
            case 'idp-5xx':
            case 'idp-timeout': {
              await setIdpFault({ mode: plan.mode });
              note(plan.kind, `${plan.mode} for ${plan.ms} ms`);
              await sleep(plan.ms);
              await setIdpFault(undefined);
              idpFaults++;
              disturbances.push({ kind: plan.kind, from, to: Date.now(), fleetWide: true });
              break;
            }
            case 'admin-refresh':
            case 'rejection':
              await revoke(plan.kind, target);
              break;
            case 'secret-rotation':
              await rotateSecret(plan);
              disturbances.push({
                kind: plan.kind,
                from,
                to: Date.now(),
                fleetWide: false,
                blocksFetches: true,
              });
              break;
          }
        } finally {
          inEffect--;
        }
      });
    };

    const startedAt = Date.now();
    const load = startLoad(
      f,
      () => f.replicas.filter((r) => !down.has(r.name)),
      CLIENT,
      options.ratePerSecond ?? 30,
      10_000,
    );
    await sleep(1_000);
    const started = new Set<Promise<void>>();
    while (Date.now() - startedAt < options.durationMs) {
      // Drawn before waiting for room, so the sequence depends on the seed only.
      const plan = drawFault(random, f.replicas.length);
      while (started.size >= MAX_FAULTS_IN_EFFECT) await Promise.race(started);
      const running: Promise<void> = runFault(plan)
        .catch((e: unknown) => {
          runErrors.push(`${plan.kind}: ${(e as Error).message}`);
        })
        .finally(() => started.delete(running));
      started.add(running);
      await sleep(plan.gapMs);
    }
    await Promise.all(started);
    // Let the fleet settle, so the end of the run is judged too.
    await sleep(RECOVERY_MS);
    const answers = await load.stop();
    const endedAt = Date.now();
    const idpRequests = sandbox.stats().tokenRequests - idpBefore;

    const report = judge({
      seed: options.seed,
      durationMs: endedAt - startedAt,
      answers,
      faults,
      maxOverlap,
      disturbances,
      attempts,
      revocations,
      runErrors,
      idpRequests,
      // The refresh budget: per fetch the fleet has a reason for (the first; one scheduled
      // refresh per ratio × token life; one per revocation request, answered or not; one per
      // replica restart or Redis restart; two per IdP fault: the failed fetch and the retry after
      // it), at most ATTEMPTS_PER_FETCH requests; plus per rotation and replica, 4 single
      // requests (a refused IdP answer is not retried): the new secret tried too early, the
      // secret in use refused, one backoff retry, the new secret accepted.
      idpBudget:
        ATTEMPTS_PER_FETCH *
          (1 +
            Math.ceil((endedAt - startedAt) / (TOKEN_LIFE_SECONDS * REFRESH_RATIO * 1000)) +
            attempts.length +
            restarts +
            redisRestarts +
            2 * idpFaults) +
        4 * f.replicas.length * rotations,
    });
    if (!report.ok && process.env.FLEET_DEBUG) dumpAround(f, report);
    return report;
  } finally {
    await fleet?.stop().catch(() => undefined);
    await killAllReplicas();
    await idp?.close();
    await redis.stop().catch(() => undefined);
  }
}

/** With FLEET_DEBUG, on a failed run: the replicas' lines near the first revoked token served. */
function dumpAround(fleet: Fleet, report: ChaosReport): void {
  const at = report.revokedServed[0]?.at ?? report.failures[0]?.at;
  if (at === undefined) return;
  for (const r of fleet.replicas)
    for (const e of r.entries()) {
      const t = Date.parse(String(e.time));
      if (t < at - 4_000 || t > at + 1_500 || e.req || e.res) continue;
      if (e.msg === 'request completed' || e.msg === 'incoming request') continue;
      process.stderr.write(
        `${String(e.time)} ${r.name} ${JSON.stringify({ ...e, time: undefined, pid: undefined, hostname: undefined, service: undefined })}\n`,
      );
    }
}

/** An answer to a caller's request, with when it arrived. */
export interface ChaosAnswer extends TokenAnswer {
  answeredAt: number;
}

/** The checks of a run, from what the callers saw and what the run did. */
export function judge(input: {
  seed: number;
  durationMs: number;
  answers: ChaosAnswer[];
  faults: ChaosReport['faults'];
  maxOverlap: number;
  disturbances: Disturbance[];
  attempts: RevocationAttempt[];
  revocations: Revocation[];
  runErrors: string[];
  idpRequests: number;
  idpBudget: number;
}): ChaosReport {
  const { answers, revocations, disturbances } = input;
  const redisOutages = disturbances.filter((d) => d.kind === 'kill-redis');
  const pauses = disturbances.filter((d) => d.kind === 'pause' || d.kind === 'pause-and-revoke');
  const overlaps = (a: { from: number; to: number }, from: number, to: number): boolean =>
    a.from <= to && a.to >= from;

  // Which revocations the revoked-token check judges. Not one that reached only the replica
  // asked (Redis was down: its answer says so). Not one with a Redis outage while it was sent or
  // within PROPAGATION_MS after: the run's Redis persists nothing, so the message may not have
  // gone out and the durable marker went with the restart (README "The chaos run").
  const judgedRevocations = revocations.filter(
    (r) =>
      r.durable && !redisOutages.some((d) => overlaps(d, r.sentAt, r.answeredAt + PROPAGATION_MS)),
  );
  // For the same reason, a replica paused while a revocation was sent, whose Redis restarted
  // empty before it resumed, cannot know of it: its answers are not judged for that revocation.
  const missedWithRedis = (a: ChaosAnswer, r: Revocation): boolean =>
    pauses.some(
      (p) =>
        p.replica === a.replica &&
        overlaps(p, r.sentAt, r.answeredAt) &&
        redisOutages.some((d) => d.from >= r.sentAt && d.from <= p.to + REPLICA_RECOVERY_MS),
    );
  const revokedServed: ChaosReport['revokedServed'] = [];
  for (const a of answers) {
    const token = a.body.access_token;
    if (typeof token !== 'string') continue;
    const sha = sha256Hex(token);
    for (const r of judgedRevocations) {
      if (!sha.startsWith(r.sha256Prefix) || missedWithRedis(a, r)) continue;
      const lateByMs = a.at - (r.sentAt + PROPAGATION_MS);
      if (lateByMs > 0) revokedServed.push({ replica: a.replica, at: a.at, via: r.via, lateByMs });
    }
  }

  // A revocation request sent while a fault that blocks fetches was in effect (a replica paused,
  // maybe holding the refresh lock; a secret rotation under way) disturbs every replica from
  // when it was sent until that fault ended.
  const derived: Disturbance[] = [];
  for (const a of input.attempts)
    for (const d of disturbances)
      if (d.blocksFetches && overlaps(d, a.sentAt, a.answeredAt))
        derived.push({ kind: d.kind, from: a.sentAt, to: d.to, fleetWide: true });
  // "A valid token existed" (conservatively): while the request was in flight and for
  // RECOVERY_MS before it was sent, the IdP answered, Redis ran, no replica was killed while the
  // refresh lock was held and no revocation landed during a fault that blocks fetches; and the
  // replica asked was not itself paused or restarted within REPLICA_RECOVERY_MS. A secret rotation alone, rejection reports
  // and admin refreshes are not faults: the fleet must serve through them.
  const judgedAnswers = answers.filter((a) =>
    [...disturbances, ...derived].every((d) => {
      const recovery = d.fleetWide ? RECOVERY_MS : REPLICA_RECOVERY_MS;
      const reaches = d.fleetWide || d.replica === a.replica;
      const touched = a.at <= d.to + recovery && a.answeredAt >= d.from;
      return !(reaches && touched);
    }),
  );
  const failed = (a: ChaosAnswer): boolean =>
    a.status !== 200 ||
    typeof a.body.access_token !== 'string' ||
    typeof a.body.expires_in !== 'number' ||
    a.body.expires_in <= 0;
  const failures = judgedAnswers.filter(failed);
  const idpOk = input.idpRequests <= input.idpBudget;
  return {
    seed: input.seed,
    durationMs: input.durationMs,
    faults: input.faults,
    maxOverlap: input.maxOverlap,
    requests: answers.length,
    judged: judgedAnswers.length,
    revocations,
    revocationsJudged: judgedRevocations.length,
    revokedServed,
    failures,
    failuresDuringFaults: answers.filter(failed).length - failures.length,
    idpRequests: input.idpRequests,
    idpBudget: input.idpBudget,
    runErrors: input.runErrors,
    ok:
      revokedServed.length === 0 && failures.length === 0 && idpOk && input.runErrors.length === 0,
  };
}

/** The report as printed by `npm run chaos` and on a failing test. */
export function formatReport(report: ChaosReport): string {
  const counts: Record<string, number> = {};
  for (const f of report.faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  const local = report.revocations.filter((r) => !r.durable).length;
  const lines = [
    `chaos seed ${report.seed}: ${report.ok ? 'PASS' : 'FAIL'} (${Math.round(report.durationMs / 1000)} s, replay: npm run chaos -- --seed ${report.seed})`,
    `  faults: ${JSON.stringify(counts)}; at most ${report.maxOverlap} in effect at once`,
    `  revoked token served > ${PROPAGATION_MS} ms after its revocation: ${report.revokedServed.length} (${report.revocations.length} revocations, ${report.revocationsJudged} judged; ${local} on one replica only while Redis was down, ${report.revocations.length - local - report.revocationsJudged} next to a Redis restart)`,
    `  caller failures while a valid token existed: ${report.failures.length} (of ${report.judged} judged answers; ${report.requests} requests in all; ${report.failuresDuringFaults} failed during a fault or its recovery, not judged)`,
    `  IdP token requests: ${report.idpRequests} (budget ${report.idpBudget})`,
    `  run errors: ${report.runErrors.length}`,
  ];
  for (const e of report.runErrors.slice(0, 5)) lines.push(`    run error: ${e}`);
  for (const r of report.revokedServed.slice(0, 5))
    lines.push(`    revoked served: ${JSON.stringify(r)}`);
  for (const a of report.failures.slice(0, 5))
    lines.push(
      `    failure: ${JSON.stringify({ replica: a.replica, at: new Date(a.at).toISOString(), status: a.status, error: a.error ?? a.body.error })}`,
    );
  return lines.join('\n');
}
