import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { lockTtlMsFor, postJson, startLoad } from '../fleet/fleet';
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
 * drawn one after another from a seeded PRNG. The same seed draws the same faults in the same
 * order with the same durations (wall-clock timing still varies), so a failing seed replays.
 */

export const CLIENT = 'chaos.client';
/** Short tokens, so scheduled refreshes happen during a run. */
export const TOKEN_LIFE_SECONDS = 20;
const REFRESH_RATIO = 0.5;
const TIMEOUT_MS = 1_000;
/** README "The chaos run": no replica serves a revoked token this long after its revocation. */
export const PROPAGATION_MS = 1_000;
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

export type FaultKind =
  | 'pause'
  | 'pause-and-revoke'
  | 'kill-replica'
  | 'kill-redis'
  | 'idp-5xx'
  | 'idp-timeout'
  | 'admin-refresh'
  | 'rejection';

const FAULT_KINDS: readonly FaultKind[] = [
  'pause',
  'pause-and-revoke',
  'kill-replica',
  'kill-redis',
  'idp-5xx',
  'idp-timeout',
  'admin-refresh',
  'rejection',
];

export interface ChaosOptions {
  seed: number;
  /** How long faults keep landing (the run then lets the fleet settle for RECOVERY_MS). */
  durationMs: number;
  /** Caller requests per second, round-robin over the replicas that are running. */
  ratePerSecond?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** A fault that made the fleet unable to serve for a while: [from, to]. */
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
}

export interface Revocation {
  /** When the revoking request was sent (the earliest the revocation may have happened). */
  sentAt: number;
  answeredAt: number;
  /** SHA-256 hex of the revoked token, or its first 8 hex digits (the admin answer's fingerprint). */
  sha256Prefix: string;
  via: 'admin-refresh' | 'rejection';
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  faults: { kind: FaultKind; at: number; detail: string }[];
  requests: number;
  /** Answers judged by the failure check (sent while a valid token existed, see below). */
  judged: number;
  revocations: Revocation[];
  /** Answers carrying a revoked token, to requests sent more than PROPAGATION_MS after its revocation. */
  revokedServed: { replica: string; at: number; via: string; lateByMs: number }[];
  /** Caller failures while a valid token existed. */
  failures: ChaosAnswer[];
  /** Caller failures during a fault or its recovery time (printed, not a failed check). */
  failuresDuringFaults: number;
  idpRequests: number;
  idpBudget: number;
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

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const random = prng(options.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const between = (min: number, max: number): number => Math.round(min + random() * (max - min));

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
    const revocations: Revocation[] = [];
    let restarts = 0;
    let redisRestarts = 0;
    let idpFaults = 0;
    const running = (): Replica[] => f.replicas.filter((r) => !down.has(r.name));
    const note = (kind: FaultKind, detail: string): void => {
      faults.push({ kind, at: Date.now(), detail });
      log(`[chaos] +${Date.now() - startedAt} ms ${kind} ${detail}`);
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

    const revokeViaAdmin = async (through: Replica): Promise<void> => {
      const sentAt = Date.now();
      const res = await postJson(through, `/admin/clients/${CLIENT}/refresh`, undefined, 10_000);
      const fp = res.body.revokedTokenFingerprint;
      if (res.status === 200 && typeof fp === 'string') {
        revocations.push({
          sentAt,
          answeredAt: Date.now(),
          sha256Prefix: fp,
          via: 'admin-refresh',
        });
      }
      note('admin-refresh', `via ${through.name}: ${res.status} revoked ${String(fp)}`);
    };
    const revokeViaRejection = async (through: Replica): Promise<void> => {
      // Report the token this replica serves now, as a downstream API that refused it would.
      const served = await f.getToken(through, CLIENT, '', 10_000);
      const token = served.body.access_token;
      if (typeof token !== 'string')
        return note('rejection', `via ${through.name}: no token to report`);
      const requestId = `chaos-${options.seed}-${revocations.length}-${Date.now()}`;
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
      });
      await res.arrayBuffer();
      const answeredAt = Date.now();
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
      if (res.status === 200 && (outcome === 'refreshed' || outcome === 'joined')) {
        revocations.push({ sentAt, answeredAt, sha256Prefix: sha256Hex(token), via: 'rejection' });
      }
      note('rejection', `via ${through.name}: ${res.status} ${outcome}`);
    };

    const startedAt = Date.now();
    const load = startLoad(f, running, CLIENT, options.ratePerSecond ?? 30, 10_000);
    await sleep(1_000);
    while (Date.now() - startedAt < options.durationMs) {
      const kind = pick(FAULT_KINDS);
      const index = between(0, f.replicas.length - 1);
      const target = f.replicas[index];
      const from = Date.now();
      switch (kind) {
        case 'pause':
        case 'pause-and-revoke': {
          const ms = between(300, 2_000);
          target.kill('SIGSTOP');
          note(kind, `${target.name} for ${ms} ms`);
          if (kind === 'pause-and-revoke') {
            await sleep(100);
            const other = f.replicas[(index + 1) % f.replicas.length];
            if (random() < 0.5) await revokeViaAdmin(other);
            else await revokeViaRejection(other);
          }
          await sleep(Math.max(0, from + ms - Date.now()));
          target.kill('SIGCONT');
          // A revocation while a replica was paused needs a fetch, which the paused replica's
          // refresh lock (if it was paused mid-fetch) can hold up for the whole fleet.
          disturbances.push({
            kind,
            from,
            to: Date.now(),
            replica: target.name,
            fleetWide: kind === 'pause-and-revoke',
          });
          break;
        }
        case 'kill-replica': {
          down.add(target.name);
          target.kill('SIGKILL');
          await target.exited;
          note(kind, `${target.name} (restarting)`);
          await f.restart(index);
          down.delete(target.name);
          restarts++;
          // Killed mid-fetch, it leaves its refresh lock behind for lockTtl: fleet-wide.
          disturbances.push({ kind, from, to: Date.now(), replica: target.name, fleetWide: true });
          break;
        }
        case 'kill-redis': {
          const ms = between(300, 2_000);
          await redis.kill();
          note(kind, `down for ${ms} ms`);
          await sleep(ms);
          await redis.restart();
          redisRestarts++;
          disturbances.push({ kind, from, to: Date.now(), fleetWide: true });
          break;
        }
        case 'idp-5xx':
        case 'idp-timeout': {
          const ms = between(500, 3_000);
          const mode = kind === 'idp-timeout' ? 'timeout' : pick(['status_500', 'status_503']);
          await setIdpFault({ mode });
          note(kind, `${mode} for ${ms} ms`);
          await sleep(ms);
          await setIdpFault(undefined);
          idpFaults++;
          disturbances.push({ kind, from, to: Date.now(), fleetWide: true });
          break;
        }
        case 'admin-refresh':
          await revokeViaAdmin(target);
          break;
        case 'rejection':
          await revokeViaRejection(target);
          break;
      }
      await sleep(between(500, 1_500));
    }
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
      disturbances,
      revocations,
      idpRequests,
      // The refresh budget: per fetch the fleet has a reason for (one scheduled refresh per
      // ratio × token life, one per revocation, one per replica restart or Redis restart, two
      // per IdP fault: the failed fetch and the retry after it), at most ATTEMPTS_PER_FETCH
      // requests, plus the first fetch.
      idpBudget:
        ATTEMPTS_PER_FETCH *
        (1 +
          Math.ceil((endedAt - startedAt) / (TOKEN_LIFE_SECONDS * REFRESH_RATIO * 1000)) +
          revocations.length +
          restarts +
          redisRestarts +
          2 * idpFaults),
    });
    return report;
  } finally {
    await fleet?.stop().catch(() => undefined);
    await killAllReplicas();
    await idp?.close();
    await redis.stop().catch(() => undefined);
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
  disturbances: Disturbance[];
  revocations: Revocation[];
  idpRequests: number;
  idpBudget: number;
}): ChaosReport {
  const { answers, revocations, disturbances } = input;
  const revokedServed: ChaosReport['revokedServed'] = [];
  for (const a of answers) {
    const token = a.body.access_token;
    if (typeof token !== 'string') continue;
    const sha = sha256Hex(token);
    for (const r of revocations) {
      if (!sha.startsWith(r.sha256Prefix)) continue;
      const lateByMs = a.at - (r.sentAt + PROPAGATION_MS);
      if (lateByMs > 0) revokedServed.push({ replica: a.replica, at: a.at, via: r.via, lateByMs });
    }
  }
  // "A valid token existed" (conservatively): while the request was in flight and for
  // RECOVERY_MS before it was sent, the IdP answered, Redis ran, no replica was killed and no
  // revocation landed while a replica was paused (so no refresh lock was left by a dead or
  // paused replica); and the replica asked was not itself paused or restarted within
  // REPLICA_RECOVERY_MS. Rejection reports and admin refreshes are not faults: the fleet must
  // serve through them.
  const judgedAnswers = answers.filter((a) =>
    disturbances.every((d) => {
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
    requests: answers.length,
    judged: judgedAnswers.length,
    revocations,
    revokedServed,
    failures,
    failuresDuringFaults: answers.filter(failed).length - failures.length,
    idpRequests: input.idpRequests,
    idpBudget: input.idpBudget,
    ok: revokedServed.length === 0 && failures.length === 0 && idpOk,
  };
}

/** The report as printed by `npm run chaos` and on a failing test. */
export function formatReport(report: ChaosReport): string {
  const counts: Record<string, number> = {};
  for (const f of report.faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
  const lines = [
    `chaos seed ${report.seed}: ${report.ok ? 'PASS' : 'FAIL'} (${Math.round(report.durationMs / 1000)} s, replay: npm run chaos -- --seed ${report.seed})`,
    `  faults: ${JSON.stringify(counts)}`,
    `  revoked token served > ${PROPAGATION_MS} ms after its revocation: ${report.revokedServed.length} (${report.revocations.length} revocations)`,
    `  caller failures while a valid token existed: ${report.failures.length} (of ${report.judged} judged answers; ${report.requests} requests in all; ${report.failuresDuringFaults} failed during a fault or its recovery, not judged)`,
    `  IdP token requests: ${report.idpRequests} (budget ${report.idpBudget})`,
  ];
  for (const r of report.revokedServed.slice(0, 5))
    lines.push(`    revoked served: ${JSON.stringify(r)}`);
  for (const a of report.failures.slice(0, 5))
    lines.push(
      `    failure: ${JSON.stringify({ replica: a.replica, at: new Date(a.at).toISOString(), status: a.status, error: a.error ?? a.body.error })}`,
    );
  return lines.join('\n');
}
