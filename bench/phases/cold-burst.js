// @ts-check
'use strict';
// Phase 2: a cold burst. Three replicas on one Redis; a client no replica has a token for;
// 1,000 concurrent callers spread over the replicas. How many requests does the IdP see?
//
// The replicas warm every configured client at start (spread over ~2 s). To get a truly cold
// client, they start while the sandbox answers 503 (with Retry-After: 60, longer than the 30 s
// the client waits out, so each warm attempt is one IdP request); we wait until every replica
// has failed its warm-up and its next scheduled retry is comfortably far away (the admin view
// shows `nextRefreshAt`; it is absent while a refresh is running), then reset the sandbox
// (zero stats, clear the fault) and fire every caller at once over connections opened
// beforehand.
const http = require('node:http');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const svc = require('../lib/services');
const { waitFor, stop, sleep } = require('../lib/procs');
const { parseMetrics, sum } = require('../lib/metrics');
const { median } = require('../lib/report');

/** @typedef {import('../types/bench').BenchSettings} BenchSettings */
/** @typedef {import('../types/bench').PhaseContext} PhaseContext */
/** @typedef {import('../types/bench').Log} Log */
/** @typedef {import('../lib/procs').BenchChild} BenchChild */

/**
 * A client's entry in the admin view (GET /admin/clients), the fields this phase reads.
 * @typedef {{ hasToken: boolean, lastError?: { at: string }, nextRefreshAt?: string }} AdminClientView
 */

const CLIENT_ID = 'cold.client';
const ENVIRONMENT = 'cold';
/** The burst must end before any replica's next scheduled retry: this much room is required. */
const RETRY_MARGIN_MS = 2_500;

/**
 * One GET over `agent`; resolves (never rejects) with the status, or the error's code, and
 * how long it took.
 * @param {http.Agent} agent
 * @param {string} url
 * @param {Record<string, string>} headers
 * @returns {Promise<{ status: number | string, ms: number }>}
 */
function request(agent, url, headers) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.get(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('error', (/** @type {NodeJS.ErrnoException} */ e) =>
      resolve({ status: `error ${e.code ?? e.message}`, ms: performance.now() - t0 }),
    );
  });
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
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: Infinity });
  try {
    const caller = svc.mintCallerKey();
    const auth = { authorization: `Bearer ${caller.key}` };
    const secret = randomBytes(24).toString('base64url');
    const secretFile = join(work, 'cold.secret');
    writeFileSync(secretFile, secret);

    const sandbox = await svc.startSandbox(work, 'cold-sandbox', [
      { clientId: CLIENT_ID, secret, scopes: ['read'] },
    ]);
    started.push(sandbox.child);
    const fault = await sandbox.setFault({ mode: 'status_503', retryAfter: 60 });
    if (fault.status !== 200) throw new Error(`setting the fault failed: ${fault.text}`);

    const configPath = join(work, 'cold.yaml');
    // timeoutMs 1000: the refresh lock lives timeoutMs × 3 + 2 s = 5 s, which bounds how long
    // the replicas that lost the lock wait after the winner's warm-up failed.
    svc.writeVendorConfig(configPath, {
      tokenUrl: sandbox.tokenUrl,
      timeoutMs: 1000,
      environment: ENVIRONMENT,
      clients: [{ clientId: CLIENT_ID, secretFile, scope: 'read' }],
      callerSha256: caller.sha256,
    });
    const keys = svc.encryptionKeys();
    const keyPrefix = `bench-cold-${Date.now()}:`;
    const replicas = await Promise.all(
      Array.from({ length: settings.replicas }, (_, i) =>
        svc.startVendor(work, `cold-vendor-${i + 1}`, {
          configPath,
          redisUrl: redis.url,
          keyPrefix,
          encryptionKeys: keys,
          stdoutPath: join(work, `cold-vendor-${i + 1}.log`),
        }),
      ),
    );
    started.push(...replicas.map((r) => r.child));
    const startedAt = Math.min(...replicas.map((r) => r.startedAt));

    // Open every caller's connection now, so the burst itself is only the token requests.
    await Promise.all(
      Array.from({ length: settings.burstCallers }, (_, i) =>
        request(agent, `${replicas[i % replicas.length].url}/health/live`, {}),
      ),
    );
    const openSockets = Object.values(agent.freeSockets).reduce(
      (n, list) => n + (list?.length ?? 0),
      0,
    );

    /** @type {(number | undefined)[]} */
    const firstFailureAt = replicas.map(() => undefined);
    const settled = await waitFor(
      'every replica to fail its warm-up and have its next retry far enough away',
      async () => {
        const views = await Promise.all(
          replicas.map(
            async (r) =>
              /** @type {{ clients: AdminClientView[] }} */ (
                (await svc.http(`${r.url}/admin/clients`, { headers: auth })).json
              ).clients[0],
          ),
        );
        const now = Date.now();
        views.forEach((v, i) => {
          if (v.lastError && firstFailureAt[i] === undefined)
            firstFailureAt[i] = Date.parse(v.lastError.at);
        });
        const ok = views.every(
          (v) =>
            v.lastError &&
            !v.hasToken &&
            v.nextRefreshAt &&
            Date.parse(v.nextRefreshAt) - now > RETRY_MARGIN_MS,
        );
        // Every view has its nextRefreshAt now (checked just above).
        return (
          ok && {
            views: /** @type {(AdminClientView & { nextRefreshAt: string })[]} */ (views),
            at: now,
          }
        );
      },
      { timeoutMs: 90_000, intervalMs: 50, alive: started },
    );
    const faultedDuringWarm = (await sandbox.stats()).faulted;
    const nextRetryInMs = Math.min(
      ...settled.views.map((v) => Date.parse(v.nextRefreshAt) - Date.now()),
    );
    log(
      `  cold burst: warm-up failed on every replica (${faultedDuringWarm} faulted IdP requests, ` +
        `${((settled.at - startedAt) / 1000).toFixed(1)} s after start); next retry in ≥ ${nextRetryInMs} ms; firing`,
    );

    const reset = await sandbox.reset(); // zero the stats, clear the fault
    if (reset.status !== 200) throw new Error(`sandbox reset failed: ${reset.text}`);
    const fireAt = performance.now();
    const answers = await Promise.all(
      Array.from({ length: settings.burstCallers }, (_, i) =>
        request(agent, `${replicas[i % replicas.length].url}/tokens/${CLIENT_ID}`, auth),
      ),
    );
    const burstMs = performance.now() - fireAt;
    await sleep(500);
    const stats = await sandbox.stats();

    /** @type {Record<string, number>} */
    const statuses = {};
    for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    const waits = { replica: 0, fleet: 0 };
    let upstream = 0;
    for (const r of replicas) {
      const m = parseMetrics((await svc.http(`${r.metricsUrl}/metrics`)).text);
      waits.replica += sum(m, 'token_vendor_single_flight_waits_total', { scope: 'replica' });
      waits.fleet += sum(m, 'token_vendor_single_flight_waits_total', { scope: 'fleet' });
      upstream += sum(m, 'token_vendor_upstream_requests_total', { outcome: 'ok' });
    }
    const latencies = answers.map((a) => a.ms);
    return {
      replicas: replicas.length,
      callers: settings.burstCallers,
      openSockets,
      idpRequests: stats.tokenRequests,
      idpIssued: stats.issued,
      ok: statuses[200] ?? 0,
      statuses,
      burstMs,
      p50Ms: median(latencies),
      maxMs: Math.max(...latencies),
      waits,
      upstreamOk: upstream,
      faultedDuringWarm,
      // Every entry is set: the wait above ended only once every replica had failed.
      secondsToAllWarmFailures:
        (Math.max(.../** @type {number[]} */ (firstFailureAt)) - startedAt) / 1000,
      secondsToFire: (settled.at - startedAt) / 1000,
      nextRetryInMs,
    };
  } finally {
    agent.destroy();
    await Promise.all(started.map((c) => stop(c)));
  }
}

module.exports = { run };
