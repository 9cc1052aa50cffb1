// @ts-check
'use strict';
// Phase 3: memory and event-loop delay as the number of configured clients grows. For each N,
// a fresh sandbox that knows the N clients and one fresh replica configured with them (all
// reading one shared secret file). The replica warms every client at start; we watch the wave
// (sandbox `issued` ≥ N, then the replica's token_vendor_token_ttl_seconds series count = N),
// sample the replica's event-loop delay p99/max from /metrics while it runs, then read RSS and
// heap used, and sample the delay a few seconds more in steady state.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const svc = require('../lib/services');
const { assertAlive, stop, sleep } = require('../lib/procs');
const { parseMetrics, value, requiredValue, seriesCount } = require('../lib/metrics');
const { fmt } = require('../lib/report');

/** @typedef {import('../types/bench').BenchSettings} BenchSettings */
/** @typedef {import('../types/bench').PhaseContext} PhaseContext */
/** @typedef {import('../types/bench').Log} Log */
/** @typedef {import('../lib/procs').BenchChild} BenchChild */

/**
 * What `run` shares with each N: the context, one caller, one secret file, one set of keys.
 * @typedef {PhaseContext & { caller: { key: string, sha256: string }, secret: string,
 *   secretFile: string, keys: string }} ScaleContext
 */

/**
 * One row of the scale table (bench/run.js scaleSection).
 * @typedef {object} ScaleRow
 * @property {number} n configured clients
 * @property {number} held tokens held when the wave ended (or its window closed)
 * @property {number} rss bytes, after a full GC
 * @property {number} heapUsed bytes, after a full GC
 * @property {number | undefined} tokensPerSecond
 * @property {number | undefined} cpuShare
 * @property {number} secondsStartToReady
 * @property {number} secondsStartToAllHeld
 * @property {number} secondsReadyToAllHeld
 * @property {number} lagP99MaxSec
 * @property {number} lagMaxSec
 * @property {number} scrapes
 * @property {boolean} timedOut
 * @property {number} issued
 * @property {number | undefined} startupLagMaxSec
 * @property {number} steadyLagP99MaxSec
 * @property {number} steadyLagMaxSec
 * @property {number} scrapeMs
 * @property {number} scrapeBytes
 * @property {number} [projectedSecondsStartToAllHeld] when timed out: from the warm rate
 * @property {number} [rssPerClient] (value at N − value at 1) ÷ (N − 1)
 * @property {number} [heapPerClient]
 */

const ENVIRONMENT = 'scale';
/** How often /metrics is scraped during the wave (each scrape resets the lag histogram). */
const SCRAPE_EVERY_MS = 1_000;
const STEADY_SAMPLES = 4;
const STEADY_EVERY_MS = 1_500;

/** @param {number} n */
function clientIds(n) {
  const width = String(n).length;
  return Array.from({ length: n }, (_, i) => `scale-${String(i + 1).padStart(width, '0')}.client`);
}

/** @param {import('../lib/services').RunningVendor} vendor */
async function scrape(vendor) {
  const t0 = performance.now();
  const r = await svc.http(`${vendor.metricsUrl}/metrics`);
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  const m = parseMetrics(r.text);
  return {
    at: Date.now(),
    ms,
    bytes: r.text.length,
    lagP99: value(m, 'nodejs_eventloop_lag_p99_seconds'),
    lagMax: value(m, 'nodejs_eventloop_lag_max_seconds'),
    cpu: requiredValue(m, 'process_cpu_seconds_total'),
    rss: requiredValue(m, 'process_resident_memory_bytes'),
    heapUsed: requiredValue(m, 'nodejs_heap_size_used_bytes'),
    held: seriesCount(m, 'token_vendor_token_ttl_seconds'),
  };
}

/**
 * @param {ScaleContext} ctx
 * @param {number} n
 * @param {BenchSettings} settings
 * @param {Log} log
 * @returns {Promise<ScaleRow>}
 */
async function one(ctx, n, settings, log) {
  const { work, redis, caller, secret, secretFile, keys } = ctx;
  /** @type {BenchChild[]} */
  const started = [];
  try {
    const ids = clientIds(n);
    const sandbox = await svc.startSandbox(
      work,
      `scale-${n}-sandbox`,
      ids.map((clientId) => ({ clientId, secret, scopes: ['read'] })),
    );
    started.push(sandbox.child);
    const configPath = join(work, `scale-${n}.yaml`);
    svc.writeVendorConfig(configPath, {
      tokenUrl: sandbox.tokenUrl,
      environment: ENVIRONMENT,
      clients: ids.map((clientId) => ({ clientId, secretFile, scope: 'read' })),
      callerSha256: caller.sha256,
    });
    // The inspector (loopback) lets the bench ask for a full GC before reading memory.
    const inspectorPort = await svc.freePort();
    const vendor = await svc.startVendor(work, `scale-${n}-vendor`, {
      nodeArgs: [`--inspect=127.0.0.1:${inspectorPort}`],
      configPath,
      redisUrl: redis.url,
      keyPrefix: `bench-scale-${n}-${Date.now()}:`,
      encryptionKeys: keys,
      stdoutPath: join(work, `scale-${n}-vendor.log`),
      waitReady: false,
    });
    started.push(vendor.child);

    // Readiness (the process listens; the warm-up was scheduled at bootstrap, just before).
    const { readyAt } = await svc.waitVendorReady(vendor, 120_000);
    const startup = await scrape(vendor); // resets the lag histogram: start-up is not the wave
    const scrapes = [];
    let lastScrape = Date.now();
    let issuedAt;
    let timedOut = false;
    const deadline = vendor.startedAt + settings.waveTimeoutSec * 1000;
    for (;;) {
      assertAlive(vendor.child);
      assertAlive(sandbox.child);
      const stats = await sandbox.stats();
      if (stats.issued >= n && issuedAt === undefined) issuedAt = Date.now();
      if (issuedAt !== undefined) {
        const s = await scrape(vendor); // also closes the last lag window of the wave
        scrapes.push(s);
        if (s.held >= n) break;
      } else if (Date.now() - lastScrape >= SCRAPE_EVERY_MS) {
        scrapes.push(await scrape(vendor));
        lastScrape = Date.now();
      }
      if (Date.now() > deadline) {
        timedOut = true;
        break;
      }
      await sleep(100);
    }
    const last = scrapes.length ? scrapes[scrapes.length - 1] : await scrape(vendor);
    const doneAt = last.at;
    const issued = (await sandbox.stats()).issued;
    const endAt = issuedAt ?? doneAt;
    const wave = {
      // Tokens fetched per second from readiness to the end of the wave (or of the window).
      tokensPerSecond: endAt > readyAt ? issued / ((endAt - readyAt) / 1000) : undefined,
      // Share of one core the replica used from readiness to the end of the wave.
      cpuShare:
        doneAt > startup.at ? (last.cpu - startup.cpu) / ((doneAt - startup.at) / 1000) : undefined,
      secondsStartToReady: (readyAt - vendor.startedAt) / 1000,
      secondsStartToAllHeld: (endAt - vendor.startedAt) / 1000,
      secondsReadyToAllHeld: Math.max(0, (endAt - readyAt) / 1000),
      lagP99MaxSec: Math.max(...scrapes.map((s) => s.lagP99 ?? 0)),
      lagMaxSec: Math.max(...scrapes.map((s) => s.lagMax ?? 0)),
      scrapes: scrapes.length,
      timedOut,
      issued,
      startupLagMaxSec: startup.lagMax,
    };

    // Memory after a full GC; then steady state: no refresh is due for ~15 minutes, what
    // remains is timers and polling.
    await sleep(1000);
    await svc.collectGarbage(inspectorPort);
    const mem = await scrape(vendor);
    const steady = [];
    for (let i = 0; i < STEADY_SAMPLES; i++) {
      await sleep(STEADY_EVERY_MS);
      steady.push(await scrape(vendor));
    }
    /** @type {ScaleRow} */
    const result = {
      n,
      held: last.held,
      rss: mem.rss, // after a full GC
      heapUsed: mem.heapUsed,
      ...wave,
      steadyLagP99MaxSec: Math.max(...steady.map((s) => s.lagP99 ?? 0)),
      steadyLagMaxSec: Math.max(...steady.map((s) => s.lagMax ?? 0)),
      scrapeMs: Math.max(...steady.map((s) => s.ms)),
      scrapeBytes: mem.bytes,
    };
    if (timedOut && wave.tokensPerSecond !== undefined) {
      result.projectedSecondsStartToAllHeld = wave.secondsStartToReady + n / wave.tokensPerSecond;
    }
    log(
      `  scale N=${n}: ready ${wave.secondsStartToReady.toFixed(1)} s, ` +
        (timedOut
          ? `window of ${settings.waveTimeoutSec} s over with ${last.held} of ${n} held ` +
            `(${fmt.fixed(wave.tokensPerSecond)} tokens/s → all held after ~${fmt.fixed(result.projectedSecondsStartToAllHeld, 0)} s)`
          : `all held after ${wave.secondsStartToAllHeld.toFixed(1)} s (${fmt.fixed(wave.tokensPerSecond)} tokens/s)`) +
        `, RSS ` +
        `${(result.rss / 2 ** 20).toFixed(1)} MiB, lag p99 max ${(wave.lagP99MaxSec * 1000).toFixed(1)} ms`,
    );
    return result;
  } finally {
    await Promise.all(started.map((c) => stop(c)));
  }
}

/**
 * @param {PhaseContext} ctx
 * @param {BenchSettings} settings
 * @param {Log} log
 */
async function run(ctx, settings, log) {
  const caller = svc.mintCallerKey();
  const secret = randomBytes(24).toString('base64url');
  const secretFile = join(ctx.work, 'scale.secret'); // one file shared by every client
  writeFileSync(secretFile, `${secret}\n`);
  const shared = { ...ctx, caller, secret, secretFile, keys: svc.encryptionKeys() };
  const rows = [];
  for (const n of settings.scale) rows.push(await one(shared, n, settings, log));
  const base = rows.find((r) => r.n === 1);
  for (const r of rows) {
    if (base && r.n > 1) {
      r.rssPerClient = (r.rss - base.rss) / (r.n - 1);
      r.heapPerClient = (r.heapUsed - base.heapUsed) / (r.n - 1);
    }
  }
  return rows;
}

module.exports = { run };
