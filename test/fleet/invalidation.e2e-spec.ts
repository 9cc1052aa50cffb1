import { PROPAGATION_MS, pollToken, postJson, servedAfter, useFleet } from './fleet';
import { type Replica, sha256Hex, sleep, type TapRecord, waitFor } from '../support';

/**
 * One fleet, one truth: 3 replicas (production entry point) on one Redis, each reaching the IdP
 * through its own tap (so every token request is counted and attributed) and Redis through its
 * own relay (so one can be cut off). Tokens live 20 minutes: nothing refreshes by itself during
 * the tests, so every IdP request counted is one the test caused.
 */
const ADMIN_CLIENT = 'admin-refresh.client';
const REJECT_CLIENT = 'rejected.client';
const PAUSED_CLIENT = 'paused.client';
const CUT_CLIENT = 'cut.client';
const SCOPED_CLIENT = 'scoped.client';
const STORM_CLIENT = 'storm.client';
const CLIENTS = [
  ADMIN_CLIENT,
  REJECT_CLIENT,
  PAUSED_CLIENT,
  CUT_CLIENT,
  SCOPED_CLIENT,
  STORM_CLIENT,
];
const WIDE = 'deals-read deals-write';
const NARROW = 'deals-read';

describe('fleet: one truth (invalidation, operator actions, rejection reports, configuration binding)', () => {
  const suite = useFleet(CLIENTS, {
    expiresIn: 1200,
    sandboxScopes: ['deals-read', 'deals-write'],
    timeoutMs: 2_000,
    refresh: { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
    scopes: { [SCOPED_CLIENT]: WIDE },
    admin: true,
    taps: true,
    redisLinks: true,
    warm: true,
  });

  const tapRecords = (clientId: string): TapRecord[] =>
    suite.fleet.taps.flatMap((t) => t.records).filter((r) => r.clientId === clientId);

  /** The token every replica serves now (each asked once); they must agree. */
  async function agreedToken(clientId: string, replicas = suite.fleet.replicas): Promise<string> {
    const answers = await Promise.all(replicas.map((r) => suite.fleet.getToken(r, clientId)));
    for (const a of answers) expect(a.status).toBe(200);
    // Compared as [replica, fingerprint] pairs, so a failure says which replica disagrees.
    const seen = answers.map((a) => [
      a.replica,
      sha256Hex(a.body.access_token as string).slice(0, 8),
    ]);
    expect(seen).toEqual(seen.map(([replica]) => [replica, seen[0][1]]));
    return answers[0].body.access_token as string;
  }

  it('admin refresh on one replica: the others serve the new token within 1 s and never the old one again; one IdP request', async () => {
    const [r1, r2, r3] = suite.fleet.replicas;
    const old = await agreedToken(ADMIN_CLIENT);
    const before = tapRecords(ADMIN_CLIENT).length;
    const load = pollToken(suite.fleet, [r2, r3], ADMIN_CLIENT);
    await sleep(200);

    const sentAt = Date.now();
    const res = await postJson(r1, `/admin/clients/${ADMIN_CLIENT}/refresh`);
    const answeredAt = Date.now();
    await sleep(PROPAGATION_MS + 300);
    const answers = await load.stop();

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      clientId: ADMIN_CLIENT,
      revocationDurable: true,
      revokedTokenFingerprint: sha256Hex(old).slice(0, 8),
    });
    // The answer says what it reached: both other replicas, each of which held the old token.
    expect((res.body.replicas as { outcome: string }[]).map((r) => r.outcome)).toEqual([
      'dropped',
      'dropped',
    ]);
    const fresh = await agreedToken(ADMIN_CLIENT);
    expect(fresh).not.toBe(old);
    expect(sha256Hex(fresh).slice(0, 8)).toBe(res.body.tokenFingerprint);
    // No answer to a request sent 1 s after the refresh started carried the old token...
    expect(servedAfter(answers, old, sentAt + PROPAGATION_MS)).toEqual([]);
    // ...in fact none sent after the admin answer did (the message had reached them).
    expect(servedAfter(answers, old, answeredAt)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.some((a) => a.body.access_token === fresh)).toBe(true);
    // Exactly one IdP request for the whole fleet.
    expect(tapRecords(ADMIN_CLIENT).length - before).toBe(1);
  });

  it('a rejection report naming the current token: one new token for the fleet, within 1 s everywhere; older tokens and repeats cost no IdP request', async () => {
    const [r1, r2, r3] = suite.fleet.replicas;
    const old = await agreedToken(REJECT_CLIENT);
    const before = tapRecords(REJECT_CLIENT).length;
    const load = pollToken(suite.fleet, [r1, r3], REJECT_CLIENT);
    await sleep(200);

    const sentAt = Date.now();
    const res = await postJson(r2, `/tokens/${REJECT_CLIENT}/rejections`, {
      token_sha256: sha256Hex(old),
    });
    await sleep(PROPAGATION_MS + 300);
    const answers = await load.stop();

    expect(res.status).toBe(200);
    const fresh = res.body.access_token as string;
    expect(fresh).not.toBe(old);
    expect(Object.keys(res.body).sort()).toEqual([
      'access_token',
      'client_id',
      'environment',
      'expires_at',
      'expires_in',
      'scope',
      'token_type',
    ]);
    expect(res.body).toMatchObject({ client_id: REJECT_CLIENT, environment: 'uat' });
    expect(await agreedToken(REJECT_CLIENT)).toBe(fresh);
    expect(servedAfter(answers, old, sentAt + PROPAGATION_MS)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(tapRecords(REJECT_CLIENT).length - before).toBe(1);

    // The old token reported again (a slow caller): the current token, no IdP request.
    const again = await postJson(r3, `/tokens/${REJECT_CLIENT}/rejections`, {
      token_sha256: sha256Hex(old),
    });
    expect([again.status, again.body.access_token]).toEqual([200, fresh]);
    // The new token reported within the interval: still the current token (rate limited).
    const limited = await postJson(r1, `/tokens/${REJECT_CLIENT}/rejections`, {
      token_sha256: sha256Hex(fresh),
    });
    expect([limited.status, limited.body.access_token]).toEqual([200, fresh]);
    expect(tapRecords(REJECT_CLIENT).length - before).toBe(1);

    // Malformed or unknown bodies: 400 (README "API", rejection reports), and no IdP request.
    for (const body of [
      {},
      { token_sha256: sha256Hex(fresh).toUpperCase() },
      { token_sha256: 'abc' },
      { token_sha256: sha256Hex(fresh), extra: 1 },
      [sha256Hex(fresh)],
      'not json',
    ]) {
      const bad = await postJson(r1, `/tokens/${REJECT_CLIENT}/rejections`, body);
      expect(bad.status).toBe(400);
      expect(bad.body.error).toBe('invalid_request');
    }
    expect(tapRecords(REJECT_CLIENT).length - before).toBe(1);
  });

  it('admin reload on one replica, and SIGHUP on another, reload every replica; the answer lists what each did', async () => {
    const [r1, r2, r3] = suite.fleet.replicas;
    const reloadsOf = (r: Replica): number =>
      r.entries().filter((e) => e.msg === 'configuration reloaded').length;
    const before = suite.fleet.replicas.map(reloadsOf);

    const res = await postJson(r1, '/admin/reload');
    expect(res.status).toBe(200);
    expect((res.body.replicas as { outcome: string }[]).map((r) => r.outcome)).toEqual([
      'reloaded',
      'reloaded',
    ]);
    // Each answered after reloading; its log line reaches the test through a pipe.
    await waitFor(
      'every replica to log its reload',
      () => suite.fleet.replicas.every((r, i) => reloadsOf(r) === before[i] + 1),
      2_000,
    );

    r2.kill('SIGHUP');
    await waitFor(
      'every replica to reload after SIGHUP on r2',
      () => suite.fleet.replicas.every((r, i) => reloadsOf(r) === before[i] + 2),
      5_000,
    );
    // Audited on the replica that was asked.
    const audit = r1.entries().filter((e) => e.msg === 'admin action' && e.action === 'reload');
    expect(audit.map((e) => [e.caller, e.outcome])).toEqual([['fleet-caller', 'done']]);
    expect(r3.alive).toBe(true);
    // The two reload waits' own budgets (2 s + 5 s) exceed Jest's default 5 s.
  }, 20_000);

  it('a replica paused (SIGSTOP) during an admin refresh serves no revoked token after SIGCONT', async () => {
    const [r1, , r3] = suite.fleet.replicas;
    const old = await agreedToken(PAUSED_CLIENT);
    r3.kill('SIGSTOP');
    const res = await postJson(r1, `/admin/clients/${PAUSED_CLIENT}/refresh`);
    expect(res.status).toBe(200);
    // The paused replica could not answer the fleet message.
    expect((res.body.replicas as unknown[]).length).toBe(1);
    await sleep(1_500);

    // Requests are already waiting in its socket when it resumes.
    const waiting = Array.from({ length: 5 }, () => suite.fleet.getToken(r3, PAUSED_CLIENT));
    await sleep(50);
    r3.kill('SIGCONT');
    const first = await Promise.all(waiting);
    const after = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        sleep(i * 20).then(() => suite.fleet.getToken(r3, PAUSED_CLIENT)),
      ),
    );
    for (const answer of [...first, ...after]) {
      expect(answer.status).toBe(200);
      expect(answer.body.access_token).not.toBe(old);
    }
    expect(await agreedToken(PAUSED_CLIENT)).not.toBe(old);
  }, 20_000);

  it('a replica cut from Redis during an admin refresh serves no revoked token, during the cut or after it is reconnected', async () => {
    const [r1, , r3] = suite.fleet.replicas;
    const old = await agreedToken(CUT_CLIENT);
    const before = tapRecords(CUT_CLIENT).length;
    const link = suite.fleet.redisLinks[2];
    // What r3 sends to Redis is held (its commands time out); what Redis sends still arrives.
    link.hold();
    const res = await postJson(r1, `/admin/clients/${CUT_CLIENT}/refresh`);
    expect(res.status).toBe(200);
    // r3 heard the revocation but could not answer it: the answer names r2 only.
    expect((res.body.replicas as unknown[]).length).toBe(1);
    await sleep(1_500);
    // Cut off, it cannot read the fleet's new token: it fetches its own (callers are not
    // failed while the IdP answers), and never serves the revoked one.
    const during = await suite.fleet.getToken(r3, CUT_CLIENT);
    expect(during.status).toBe(200);
    expect(during.body.access_token).not.toBe(old);

    link.release();
    const load = pollToken(suite.fleet, [r3], CUT_CLIENT);
    await sleep(PROPAGATION_MS + 1_000);
    const answers = await load.stop();
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(servedAfter(answers, old, 0)).toEqual([]);
    for (const r of suite.fleet.replicas) {
      const a = await suite.fleet.getToken(r, CUT_CLIENT);
      expect([a.replica, a.status, a.body.access_token === old]).toEqual([r.name, 200, false]);
    }
    // The fleet's one refresh (by whichever replica held the lock) and the cut-off replica's
    // own fetch; no other.
    const fetchedBy = tapRecords(CUT_CLIENT)
      .slice(before)
      .map((r) => r.replica);
    expect(fetchedBy).toHaveLength(2);
    expect(fetchedBy).toContain('r3');
  }, 20_000);

  it('scope narrowed and a replica restarted: it serves a new-scope token (one IdP request), never the wider one; the old replicas keep theirs without asking again', async () => {
    const wide = await agreedToken(SCOPED_CLIENT);
    const stopped = suite.fleet.replicas[2];
    await stopped.stop();
    const before = tapRecords(SCOPED_CLIENT).length;
    const narrowReplica = await suite.fleet.restart(2, { [SCOPED_CLIENT]: NARROW });

    const first = await suite.fleet.getToken(narrowReplica, SCOPED_CLIENT);
    expect(first.status).toBe(200);
    expect(first.body.scope).toBe(NARROW);
    expect(first.body.access_token).not.toBe(wide);
    const fetched = tapRecords(SCOPED_CLIENT).slice(before);
    expect(fetched.map((r) => r.replica)).toEqual(['r3']);

    // Side by side (a rollout): each configuration keeps its own token; 30 requests on each
    // replica cost no IdP request.
    const [r1, r2] = suite.fleet.replicas;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        suite.fleet.getToken([r1, r2, narrowReplica][i % 3], SCOPED_CLIENT),
      ),
    );
    for (const a of answers) {
      expect(a.status).toBe(200);
      const expected = a.replica === 'r3' ? first.body.access_token : wide;
      expect([a.replica, a.body.access_token]).toEqual([a.replica, expected]);
    }
    expect(tapRecords(SCOPED_CLIENT).length - before).toBe(1);
  });

  it('1,000 rejection reports in 10 s over 3 replicas, each naming the token its caller holds: one IdP request', async () => {
    const replicas = suite.fleet.replicas;
    let held = await agreedToken(STORM_CLIENT);
    const original = held;
    const before = tapRecords(STORM_CLIENT).length;
    const statuses = new Map<number, number>();
    const started = Date.now();
    const reports: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      // 100 reports a second, round-robin over the replicas, not waiting for answers.
      const due = started + i * 10;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const named = held;
      reports.push(
        postJson(replicas[i % 3], `/tokens/${STORM_CLIENT}/rejections`, {
          token_sha256: sha256Hex(named),
        }).then((res) => {
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status === 200) held = res.body.access_token as string;
        }),
      );
    }
    await Promise.all(reports);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect([...statuses]).toEqual([[200, 1000]]);
    expect(held).not.toBe(original);
    expect(tapRecords(STORM_CLIENT).length - before).toBe(1);
    expect(await agreedToken(STORM_CLIENT)).toBe(held);
  }, 30_000);
});
