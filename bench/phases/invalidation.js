// @ts-check
'use strict';
// Phase 5: invalidation propagation. Three replicas on one Redis; an operator's
// `POST /admin/clients/:clientId/refresh` on one replica, in turn on each; the time from the
// admin answer until every replica serves the new token (each replica polled in a loop, one
// request at a time, from the admin answer on). Also counted: answers that still carried the
// revoked token to requests sent after the admin answer (the README promises none after 1 s).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { createHash, randomBytes } = require('node:crypto');
const svc = require('../lib/services');
const { stop } = require('../lib/procs');
const { median } = require('../lib/report');

/** @typedef {import('../types/bench').BenchSettings} BenchSettings */
/** @typedef {import('../types/bench').PhaseContext} PhaseContext */
/** @typedef {import('../types/bench').Log} Log */
/** @typedef {import('../lib/procs').BenchChild} BenchChild */
/** @typedef {import('../lib/services').RunningVendor} RunningVendor */

const CLIENT_ID = 'invalidated.client';
const ENVIRONMENT = 'inval';
/** A replica that has not served the new token this long after the admin answer fails the phase. */
const GIVE_UP_MS = 5_000;

/**
 * @param {number[]} sorted
 * @param {number} p
 */
function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const fingerprintOf = (/** @type {string} */ token) =>
  createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * @param {RunningVendor} replica
 * @param {Record<string, string>} auth
 * @returns {Promise<string>}
 */
async function tokenOf(replica, auth) {
  const res = await svc.http(`${replica.url}/tokens/${CLIENT_ID}`, { headers: auth });
  if (res.status !== 200) throw new Error(`${replica.name}: GET /tokens answered ${res.status}`);
  return /** @type {import('../lib/reference-answer').VendedTokenBody} */ (res.json).access_token;
}

/**
 * Polls `replica` until it serves a token whose SHA-256 starts with `fingerprint`; resolves
 * with the time that answer arrived and how many answers carried `revokedFingerprint` first.
 * @param {RunningVendor} replica
 * @param {Record<string, string>} auth
 * @param {string} fingerprint
 * @param {string | undefined} revokedFingerprint
 */
async function untilServing(replica, auth, fingerprint, revokedFingerprint) {
  const deadline = performance.now() + GIVE_UP_MS;
  let stale = 0;
  for (;;) {
    const sha = fingerprintOf(await tokenOf(replica, auth));
    if (sha.startsWith(fingerprint)) return { at: performance.now(), stale };
    if (revokedFingerprint && sha.startsWith(revokedFingerprint)) stale++;
    if (performance.now() > deadline)
      throw new Error(`${replica.name} did not serve the new token within ${GIVE_UP_MS} ms`);
  }
}

/**
 * @param {PhaseContext} ctx
 * @param {BenchSettings} settings
 * @param {Log} log
 */
async function run(ctx, settings, log) {
  const { work, redis } = ctx;
  /** @type {BenchChild[]} */
  const started = [];
  try {
    const caller = svc.mintCallerKey();
    const auth = { authorization: `Bearer ${caller.key}` };
    const secret = randomBytes(24).toString('base64url');
    const secretFile = join(work, 'inval.secret');
    writeFileSync(secretFile, secret);
    // Hour-long tokens: nothing refreshes by itself during the phase.
    const sandbox = await svc.startSandbox(
      work,
      'inval-sandbox',
      [{ clientId: CLIENT_ID, secret, scopes: ['read'] }],
      { SANDBOX_EXPIRES_IN: '3600' },
    );
    started.push(sandbox.child);
    const configPath = join(work, 'inval.yaml');
    svc.writeVendorConfig(configPath, {
      tokenUrl: sandbox.tokenUrl,
      timeoutMs: 2000,
      environment: ENVIRONMENT,
      clients: [{ clientId: CLIENT_ID, secretFile, scope: 'read' }],
      callerSha256: caller.sha256,
    });
    const keys = svc.encryptionKeys();
    const keyPrefix = `bench-inval-${Date.now()}:`;
    const replicas = await Promise.all(
      Array.from({ length: settings.replicas }, (_, i) =>
        svc.startVendor(work, `inval-vendor-${i + 1}`, {
          configPath,
          redisUrl: redis.url,
          keyPrefix,
          encryptionKeys: keys,
          stdoutPath: join(work, `inval-vendor-${i + 1}.log`),
        }),
      ),
    );
    started.push(...replicas.map((r) => r.child));
    for (const r of replicas) await tokenOf(r, auth); // every replica holds a copy

    const propagationMs = [];
    const adminMs = [];
    let staleAnswers = 0;
    for (let i = 0; i < settings.invalidations; i++) {
      const via = replicas[i % replicas.length];
      const sentAt = performance.now();
      const res = await svc.http(`${via.url}/admin/clients/${CLIENT_ID}/refresh`, {
        method: 'POST',
        headers: auth,
      });
      const answeredAt = performance.now();
      if (res.status !== 200) throw new Error(`admin refresh answered ${res.status}: ${res.text}`);
      const { tokenFingerprint, revokedTokenFingerprint } =
        /** @type {{ tokenFingerprint: string, revokedTokenFingerprint?: string }} */ (res.json);
      const served = await Promise.all(
        replicas.map((r) => untilServing(r, auth, tokenFingerprint, revokedTokenFingerprint)),
      );
      propagationMs.push(Math.max(...served.map((s) => s.at)) - answeredAt);
      adminMs.push(answeredAt - sentAt);
      staleAnswers += served.reduce((n, s) => n + s.stale, 0);
      if ((i + 1) % 25 === 0) log(`  invalidation: ${i + 1}/${settings.invalidations}`);
    }
    const stats = await sandbox.stats();
    const sorted = [...propagationMs].sort((a, b) => a - b);
    const sortedAdmin = [...adminMs].sort((a, b) => a - b);
    return {
      replicas: replicas.length,
      invalidations: propagationMs.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1],
      adminP50Ms: median(sortedAdmin),
      adminP99Ms: percentile(sortedAdmin, 99),
      staleAnswers,
      // One per replica start (warm-up; the lock makes it one for the fleet) plus one per refresh.
      idpRequests: stats.tokenRequests,
    };
  } finally {
    await Promise.all(started.map((c) => stop(c)));
  }
}

module.exports = { run };
