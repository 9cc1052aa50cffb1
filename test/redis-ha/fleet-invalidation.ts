import type { RunningSandbox } from '@app/identity-sandbox';
import { pollToken, postJson, servedAfter } from '../fleet/fleet';
import { type Fleet, sha256Hex, sleep, startService } from '../support';

/**
 * Fleet-wide invalidation (README "Fleet-wide invalidation") on a Redis topology other than
 * standalone: 3 replica processes (the production entry point) on Sentinel or Cluster, each
 * reaching the IdP through the fleet's tap, so every token request is counted. Tokens live 20
 * minutes: nothing refreshes by itself during the tests, so every IdP request counted is one the
 * test caused. The scenarios are the ones test/fleet/invalidation.e2e-spec.ts runs on standalone.
 */

/** The contract: an invalidated token is served by no replica more than this later. */
export const PROPAGATION_MS = 1_000;

export async function startTopologyFleet(options: {
  sandbox: RunningSandbox;
  clientIds: string[];
  /** The topology's environment (REDIS_SENTINELS + REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES). */
  redisEnv: NodeJS.ProcessEnv;
  /** A standalone URL of one of the topology's servers, for the fleet's inspection client. */
  inspectUrl: string;
}): Promise<Fleet> {
  return startService({
    run: 'fleet',
    sandbox: options.sandbox,
    clientIds: options.clientIds,
    timeoutMs: 2_000,
    refresh: { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
    admin: true,
    taps: true,
    redis: options.inspectUrl,
    // The replicas reach the topology, not the inspection URL: an undefined variable is left out
    // of a child's environment, and only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES
    // may be set.
    replicaEnv: () => ({ REDIS_URL: undefined, ...options.redisEnv }),
  });
}

/** IdP requests the replicas sent for `clientId` so far (through the tap). */
export function idpRequestsFor(fleet: Fleet, clientId: string): number {
  return fleet.taps.flatMap((t) => t.records).filter((r) => r.clientId === clientId).length;
}

/** The token every replica serves now (each asked once); they must agree. */
export async function agreedToken(fleet: Fleet, clientId: string): Promise<string> {
  const answers = await Promise.all(fleet.replicas.map((r) => fleet.getToken(r, clientId)));
  expect(answers.map((a) => [a.replica, a.status])).toEqual(
    fleet.replicas.map((r) => [r.name, 200]),
  );
  const tokens = new Set(answers.map((a) => a.body.access_token as string));
  expect(tokens.size).toBe(1);
  return [...tokens][0];
}

/**
 * An invalidation on the first replica (an admin refresh, or a rejection report of the token it
 * serves) while the other two are polled: no answer to a request sent 1 s after it carries the
 * old token, the others serve the new one, every answer is a 200, and the fleet asked the IdP
 * once.
 */
export async function expectInvalidationReachesFleet(
  fleet: Fleet,
  clientId: string,
  via: 'admin-refresh' | 'rejection',
): Promise<void> {
  const [r1, ...others] = fleet.replicas;
  const old = await agreedToken(fleet, clientId);
  const before = idpRequestsFor(fleet, clientId);
  const load = pollToken(fleet, others, clientId);
  await sleep(200);

  const sentAt = Date.now();
  const res =
    via === 'admin-refresh'
      ? await postJson(r1, `/admin/clients/${clientId}/refresh`)
      : await postJson(r1, `/tokens/${clientId}/rejections`, { token_sha256: sha256Hex(old) });
  await sleep(PROPAGATION_MS + 300);
  const answers = await load.stop();

  expect(res.status).toBe(200);
  let fresh: string;
  if (via === 'admin-refresh') {
    expect(res.body).toMatchObject({
      clientId,
      revocationDurable: true,
      revokedTokenFingerprint: sha256Hex(old).slice(0, 8),
    });
    // The answer says what it reached: both other replicas, each of which held the old token.
    expect((res.body.replicas as { outcome: string }[]).map((r) => r.outcome)).toEqual([
      'dropped',
      'dropped',
    ]);
    fresh = await agreedToken(fleet, clientId);
    expect(sha256Hex(fresh).slice(0, 8)).toBe(res.body.tokenFingerprint);
  } else {
    fresh = res.body.access_token as string;
    expect(await agreedToken(fleet, clientId)).toBe(fresh);
  }
  expect(fresh).not.toBe(old);
  expect(servedAfter(answers, old, sentAt + PROPAGATION_MS)).toEqual([]);
  expect(answers.filter((a) => a.status !== 200)).toEqual([]);
  for (const r of others)
    expect([
      r.name,
      answers.some((a) => a.replica === r.name && a.body.access_token === fresh),
    ]).toEqual([r.name, true]);
  expect(idpRequestsFor(fleet, clientId) - before).toBe(1);
}

/**
 * The last replica paused (SIGSTOP) while the first one refreshes the token for the fleet: the
 * paused one cannot hear the revocation; after SIGCONT (requests already waiting in its socket)
 * it re-checks its copy against the durable marker before serving it, and serves no revoked
 * token.
 */
export async function expectPausedReplicaServesNoRevokedToken(
  fleet: Fleet,
  clientId: string,
): Promise<void> {
  const [r1] = fleet.replicas;
  const paused = fleet.replicas[fleet.replicas.length - 1];
  const old = await agreedToken(fleet, clientId);
  paused.kill('SIGSTOP');
  try {
    const res = await postJson(r1, `/admin/clients/${clientId}/refresh`);
    expect(res.status).toBe(200);
    expect(res.body.revocationDurable).toBe(true);
    // The paused replica could not answer the fleet message.
    expect((res.body.replicas as unknown[]).length).toBe(fleet.replicas.length - 2);
    await sleep(1_500);
    const waiting = Array.from({ length: 5 }, () => fleet.getToken(paused, clientId));
    await sleep(50);
    paused.kill('SIGCONT');
    const first = await Promise.all(waiting);
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        sleep(i * 20).then(() => fleet.getToken(paused, clientId)),
      ),
    );
    for (const answer of [...first, ...after]) {
      expect([answer.status, answer.body.access_token === old]).toEqual([200, false]);
    }
    expect(await agreedToken(fleet, clientId)).not.toBe(old);
  } finally {
    paused.kill('SIGCONT');
  }
}
