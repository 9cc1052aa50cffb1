// @ts-check
'use strict';
// Phase 4: the caller SDK (@token-vendor/client, built into dist/client).
//  a. What a cache hit costs: `await getToken()` on a held token, in this process.
//  b. A simulation: SIM_CALLERS services, each with its own SDK client, making
//     SIM_CALLS_PER_SECOND downstream calls per second in all for `simSeconds`, each call
//     needing a token of a client whose tokens live 20 s; the vendor requests this causes with
//     the SDK, against one GET /tokens per call without it (measured the same way, same rate).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const svc = require('../lib/services');
const { ROOT, stop } = require('../lib/procs');

/** @typedef {import('../types/bench').BenchSettings} BenchSettings */
/** @typedef {import('../types/bench').PhaseContext} PhaseContext */
/** @typedef {import('../types/bench').Log} Log */
/** @typedef {import('../lib/procs').BenchChild} BenchChild */
/** @typedef {import('@token-vendor/client').TokenVendorClient} TokenVendorClient */

const HIT_CLIENT = 'hit.client';
const SIM_CLIENT = 'sim.client';
const ENVIRONMENT = 'sdk';
const SIM_CALLERS = 50;
const SIM_CALLS_PER_SECOND = 1000;
const SIM_TOKEN_SECONDS = 20;
/** The vendor refreshes at 3/4 of a token's life (refresh.ratio 0.75): a new token every 15 s. */
const VENDOR_REFRESH_SECONDS = (SIM_TOKEN_SECONDS * 3) / 4;
const HIT_BATCH = 500;
const HIT_BATCHES = 2_000;

/**
 * @param {number[]} sorted
 * @param {number} p
 */
function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * ns per `await getToken()` on a held token, per batch of HIT_BATCH calls.
 * @param {TokenVendorClient} client
 */
async function cacheHitCost(client) {
  await client.getToken(HIT_CLIENT, { environment: ENVIRONMENT });
  for (let i = 0; i < 200_000; i++) await client.getToken(HIT_CLIENT, { environment: ENVIRONMENT });
  const perCall = [];
  for (let b = 0; b < HIT_BATCHES; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < HIT_BATCH; i++)
      await client.getToken(HIT_CLIENT, { environment: ENVIRONMENT });
    perCall.push(Number(process.hrtime.bigint() - t0) / HIT_BATCH);
  }
  perCall.sort((a, b) => a - b);
  return {
    p50Ns: percentile(perCall, 50),
    p99Ns: percentile(perCall, 99),
    calls: HIT_BATCH * HIT_BATCHES,
  };
}

/**
 * SIM_CALLERS callers, each ticking every SIM_CALLERS / SIM_CALLS_PER_SECOND s; `call` is what
 * one downstream call does to get its token. A caller whose previous call has not finished
 * skips the tick (counted): a stalled vendor must not pile up work in the bench.
 * @param {number} seconds
 * @param {(caller: number) => () => Promise<unknown>} callFor
 */
async function simulate(seconds, callFor) {
  const intervalMs = (SIM_CALLERS * 1000) / SIM_CALLS_PER_SECOND;
  const stats = { calls: 0, failed: 0, skipped: 0 };
  /** @type {NodeJS.Timeout[]} */
  const timers = [];
  /** @type {Set<Promise<unknown>>} */
  const inFlight = new Set();
  for (let c = 0; c < SIM_CALLERS; c++) {
    const call = callFor(c);
    let busy = false;
    const tick = () => {
      if (busy) {
        stats.skipped++;
        return;
      }
      busy = true;
      const p = call()
        .then(
          () => stats.calls++,
          () => stats.failed++,
        )
        .finally(() => {
          busy = false;
          inFlight.delete(p);
        });
      inFlight.add(p);
    };
    // Spread the callers over one interval, as independent services would be.
    timers.push(
      setTimeout(
        () => {
          tick();
          timers.push(setInterval(tick, intervalMs));
        },
        (intervalMs * c) / SIM_CALLERS,
      ),
    );
  }
  await svc.sleep(seconds * 1000);
  for (const t of timers) clearInterval(t);
  await Promise.allSettled([...inFlight]);
  return stats;
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
    // The built package (dist/client), typed by its sources (libs/client).
    /** @type {unknown} */
    const built = require(join(ROOT, 'dist/client'));
    const { createTokenVendorClient } = /** @type {typeof import('@token-vendor/client')} */ (
      built
    );
    const caller = svc.mintCallerKey();
    const secret = randomBytes(24).toString('base64url');
    const secretFile = join(work, 'sdk.secret');
    writeFileSync(secretFile, secret);
    const sandbox = await svc.startSandbox(work, 'sdk-sandbox', [
      { clientId: HIT_CLIENT, secret },
      { clientId: SIM_CLIENT, secret },
    ]);
    started.push(sandbox.child);
    const configPath = join(work, 'sdk.yaml');
    svc.writeVendorConfig(configPath, {
      tokenUrl: sandbox.tokenUrl,
      environment: ENVIRONMENT,
      clients: [HIT_CLIENT, SIM_CLIENT].map((clientId) => ({ clientId, secretFile })),
      callerSha256: caller.sha256,
      // 20-s tokens: the default minTtl (30 s) would refuse them.
      minTtlSeconds: 2,
    });
    const vendor = await svc.startVendor(work, 'sdk-vendor', {
      configPath,
      redisUrl: redis.url,
      keyPrefix: 'bench-sdk:',
      encryptionKeys: svc.encryptionKeys(),
    });
    started.push(vendor.child);
    const auth = { authorization: `Bearer ${caller.key}` };

    log('SDK cache-hit cost...');
    const hit = await cacheHitCost(
      createTokenVendorClient({ baseUrl: vendor.url, callerKey: caller.key }),
    );
    log(`  p50 ${hit.p50Ns.toFixed(0)} ns, p99 ${hit.p99Ns.toFixed(0)} ns per getToken`);

    // From now on the IdP issues 20-s tokens; the vendor's current one for SIM_CLIENT is replaced.
    const set = await svc.http(`${sandbox.url}/_sandbox/expires-in`, {
      method: 'PUT',
      body: { seconds: SIM_TOKEN_SECONDS },
    });
    if (set.status !== 200) throw new Error(`setting expires-in failed: ${set.text}`);
    const refreshed = await svc.http(
      `${vendor.url}/admin/clients/${SIM_CLIENT}/refresh?environment=${ENVIRONMENT}`,
      { method: 'POST', headers: auth },
    );
    if (refreshed.status !== 200) throw new Error(`admin refresh failed: ${refreshed.text}`);

    const seconds = settings.sdkSimSeconds;
    const tokenPath = `${vendor.url}/tokens/${SIM_CLIENT}?environment=${ENVIRONMENT}`;

    log(
      `Simulation with the SDK: ${SIM_CALLERS} callers, ${SIM_CALLS_PER_SECOND} calls/s, ${seconds} s...`,
    );
    let withRequests = 0;
    const clients = Array.from({ length: SIM_CALLERS }, () =>
      createTokenVendorClient({
        baseUrl: vendor.url,
        callerKey: caller.key,
        fetch: (input, init) => {
          withRequests++;
          return fetch(input, init);
        },
      }),
    );
    const idpBefore = (await sandbox.stats()).tokenRequests;
    const withSdk = await simulate(
      seconds,
      (c) => () => clients[c].getToken(SIM_CLIENT, { environment: ENVIRONMENT }),
    );
    const idpDuringWith = (await sandbox.stats()).tokenRequests - idpBefore;

    log(`Simulation without the SDK (one GET /tokens per call), ${seconds} s...`);
    let withoutRequests = 0;
    const withoutSdk = await simulate(seconds, () => async () => {
      withoutRequests++;
      const res = await fetch(tokenPath, { headers: auth, signal: AbortSignal.timeout(10_000) });
      const body = /** @type {{ access_token?: unknown }} */ (await res.json());
      if (res.status !== 200 || typeof body.access_token !== 'string')
        throw new Error(`${res.status}`);
    });

    const target = SIM_CALLERS * (seconds / VENDOR_REFRESH_SECONDS + 1);
    return {
      hit,
      seconds,
      callers: SIM_CALLERS,
      callsPerSecond: SIM_CALLS_PER_SECOND,
      tokenSeconds: SIM_TOKEN_SECONDS,
      refreshSeconds: VENDOR_REFRESH_SECONDS,
      target,
      with: { ...withSdk, vendorRequests: withRequests, idpRequests: idpDuringWith },
      without: { ...withoutSdk, vendorRequests: withoutRequests },
    };
  } finally {
    await Promise.all(started.map((c) => stop(c)));
  }
}

module.exports = { run };
