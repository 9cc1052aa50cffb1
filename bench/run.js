#!/usr/bin/env node
// @ts-check
'use strict';
// `npm run bench`: see bench/README.md. Prints the tables and writes bench/results.md.
const os = require('node:os');
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync } = require('node:child_process');
const procs = require('./lib/procs');
const svc = require('./lib/services');
const { machineInfo, machineLine, table, fmt } = require('./lib/report');
const hotPath = require('./phases/hot-path');
const coldBurst = require('./phases/cold-burst');
const scale = require('./phases/scale');
const sdk = require('./phases/sdk');
const invalidation = require('./phases/invalidation');

/** @typedef {import('./types/bench').BenchSettings} BenchSettings */
/** @typedef {import('./types/bench').PhaseContext} PhaseContext */
/** @typedef {import('./types/bench').Log} Log */
/** @typedef {import('./lib/report').MachineInfo} MachineInfo */

/**
 * An integer setting from the environment, `fallback` when unset or not a whole number.
 * @param {string} name
 * @param {number} fallback
 */
function int(name, fallback) {
  const raw = process.env[name];
  return raw && /^\d+$/.test(raw) ? Number(raw) : fallback;
}

const ALL_PHASES = ['hot', 'cold', 'scale', 'sdk', 'invalidation'];

/** @type {BenchSettings} */
const SETTINGS = {
  connections: int('BENCH_CONNECTIONS', 32),
  warmupSec: int('BENCH_WARMUP_SECONDS', 2),
  durationSec: int('BENCH_DURATION_SECONDS', 6),
  rounds: int('BENCH_ROUNDS', 4),
  burstCallers: int('BENCH_BURST_CALLERS', 1000),
  replicas: int('BENCH_REPLICAS', 3),
  scale: (process.env.BENCH_SCALE ?? '1,100,1000,10000').split(',').map(Number),
  waveTimeoutSec: int('BENCH_WAVE_TIMEOUT_SECONDS', 60),
  sdkSimSeconds: int('BENCH_SDK_SIM_SECONDS', 60),
  invalidations: int('BENCH_INVALIDATIONS', 100),
  phases: (process.env.BENCH_PHASES ?? ALL_PHASES.join(',')).split(','),
};

/** @type {Log} */
const log = (line) => {
  process.stdout.write(`${line}\n`);
};
/** @type {string | undefined} */
let work;

async function cleanup() {
  await procs.stopAll();
  if (work && !process.env.BENCH_KEEP_WORKDIR) rmSync(work, { recursive: true, force: true });
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    interrupted = true;
    log(`\n${signal}: stopping every process the bench started...`);
    void cleanup().finally(() => process.exit(130));
  });
}

/**
 * @param {MachineInfo} m
 * @param {Awaited<ReturnType<typeof hotPath.run>>} hot
 */
function hotSection(m, hot) {
  const { median: med, ratios } = hot;
  const row = (/** @type {keyof typeof med} */ k) => [
    med[k].label,
    fmt.int(med[k].rps),
    fmt.fixed(med[k].p50, 0),
    fmt.fixed(med[k].p99, 0),
    med[k].runs.map((r) => r.toLocaleString('en-US')).join(' / '),
    fmt.fixed(med[k].cpuUs, 1),
    fmt.fixed(med[k].cpuUserUs, 1),
    med[k].cpuRuns.map((c) => c.toFixed(1)).join(' / '),
    med[k].non2xx + med[k].errors,
  ];
  return [
    '## 1. Hot path: cache-hit `GET /tokens/:clientId`',
    '',
    machineLine(m),
    '',
    `**token-vendor = ${fmt.pct(ratios.vendorToFloor)} of the floor and ${fmt.pct(ratios.vendorToCeiling)} ` +
      `of the ceiling** (median req/s; p99 ${fmt.fixed(med.vendor.p99, 0)} ms vs ` +
      `${fmt.fixed(med.floor.p99, 0)} ms floor, ${fmt.fixed(med.ceiling.p99, 0)} ms ceiling). ` +
      `By CPU cost per request: **${fmt.pct(ratios.vendorToFloorCpu)} of the floor's requests per ` +
      `CPU-second** (${fmt.fixed(med.vendor.cpuUs, 1)} µs vs ${fmt.fixed(med.floor.cpuUs, 1)} µs). ` +
      `The yardstick's premise, NestJS on Fastify doing only the floor's work: ` +
      `**${fmt.pct(ratios.nestToFloor)} of the floor**; token-vendor = ` +
      `${fmt.pct(ratios.vendorToNest)} of that NestJS reference.`,
    '',
    table(
      ['ratio', 'value'],
      [
        ['token-vendor req/s ÷ floor req/s', fmt.ratio(ratios.vendorToFloor)],
        ['token-vendor req/s ÷ ceiling req/s', fmt.ratio(ratios.vendorToCeiling)],
        ['floor CPU/request ÷ token-vendor CPU/request', fmt.ratio(ratios.vendorToFloorCpu)],
        ['ceiling CPU/request ÷ token-vendor CPU/request', fmt.ratio(ratios.vendorToCeilingCpu)],
        ['floor req/s ÷ ceiling req/s (cost of one Redis GET)', fmt.ratio(ratios.floorToCeiling)],
        [
          'NestJS reference req/s ÷ floor req/s (the framework alone)',
          fmt.ratio(ratios.nestToFloor),
        ],
        ['token-vendor req/s ÷ NestJS reference req/s', fmt.ratio(ratios.vendorToNest)],
        [
          'NestJS reference CPU/request ÷ token-vendor CPU/request',
          fmt.ratio(ratios.vendorToNestCpu),
        ],
        ['token-vendor JWT caller req/s ÷ key caller req/s', fmt.ratio(ratios.jwtToKey)],
        [
          'token-vendor key caller CPU/request ÷ JWT caller CPU/request',
          fmt.ratio(ratios.jwtToKeyCpu),
        ],
        ['token-vendor p99 ÷ floor p99', fmt.ratio(med.vendor.p99 / med.floor.p99)],
        ['token-vendor p99 ÷ ceiling p99', fmt.ratio(med.vendor.p99 / med.ceiling.p99)],
      ],
    ),
    '',
    table(
      [
        'server',
        'req/s (median)',
        'p50 ms',
        'p99 ms',
        'req/s of each run',
        'CPU µs/request',
        'of which user',
        'CPU µs/request of each run',
        'non-2xx + errors',
      ],
      [row('ceiling'), row('floor'), row('nest'), row('vendor'), row('vendorJwt')],
    ),
    '',
    `autocannon (in the bench process), ${SETTINGS.connections} connections, ${SETTINGS.warmupSec} s ` +
      `warm-up + ${SETTINGS.durationSec} s measured per run (CPU: the server process's user + system ` +
      `time over the measured part, all threads, ÷ requests answered), ${SETTINGS.rounds} rounds in a balanced order ` +
      `(Williams design: over a full cycle, as many rounds as servers when that number is even and twice as many when odd, every server runs once at every place and once right after every other); medians of the rounds. IdP requests during the load: ` +
      `${hot.idpRequestsDuringLoad} (every request was a cache hit). Answer body ` +
      `${med.vendor.shape.bodyBytes} B everywhere; headers: token-vendor ${med.vendor.shape.headerCount}, ` +
      `bare servers ${med.floor.shape.headerCount}, NestJS reference ${med.nest.shape.headerCount}.`,
  ].join('\n');
}

/**
 * @param {MachineInfo} m
 * @param {Awaited<ReturnType<typeof coldBurst.run>>} c
 */
function coldSection(m, c) {
  const others = Object.entries(c.statuses)
    .filter(([s]) => s !== '200')
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  return [
    '## 2. Cold burst: one client nobody holds a token for',
    '',
    machineLine(m),
    '',
    `**The IdP saw ${c.idpRequests} request${c.idpRequests === 1 ? '' : 's'} (target 1) for ` +
      `${c.callers.toLocaleString('en-US')} concurrent callers on ${c.replicas} replicas; ` +
      `${c.ok.toLocaleString('en-US')} got 200.**`,
    '',
    table(
      [
        'replicas',
        'callers',
        'IdP requests (target 1)',
        'callers with 200',
        'other answers',
        'burst wall time ms',
        'caller p50 / max ms',
        'single-flight waits (replica / fleet)',
      ],
      [
        [
          c.replicas,
          c.callers.toLocaleString('en-US'),
          c.idpRequests,
          c.ok.toLocaleString('en-US'),
          others || 'none',
          fmt.int(c.burstMs),
          `${fmt.int(c.p50Ms)} / ${fmt.int(c.maxMs)}`,
          `${c.waits.replica} / ${c.waits.fleet}`,
        ],
      ],
    ),
    '',
    `The replicas started while the sandbox answered 503 (Retry-After 60 s), so their start-up ` +
      `warm-up failed (${c.faultedDuringWarm} faulted IdP requests; every replica had failed ` +
      `${fmt.fixed(c.secondsToAllWarmFailures)} s after start). The burst fired ` +
      `${fmt.fixed(c.secondsToFire)} s after start, once every replica's next scheduled retry was ` +
      `≥ ${c.nextRetryInMs} ms away, right after the sandbox was reset (stats zeroed, fault cleared), ` +
      `over ${c.openSockets} connections opened beforehand.`,
  ].join('\n');
}

/**
 * @param {MachineInfo} m
 * @param {Awaited<ReturnType<typeof scale.run>>} rows
 */
function scaleSection(m, rows) {
  const partial = rows.filter((r) => r.timedOut);
  return [
    '## 3. Scale: configured clients',
    '',
    machineLine(m),
    '',
    table(
      [
        'clients',
        'RSS MiB',
        'heap used MiB',
        'RSS / client KiB',
        'heap / client KiB',
        'start → ready s',
        'start → all held s',
        'warm rate tokens/s',
        'CPU in wave (1 core = 100 %)',
        'loop delay p99 max, wave ms',
        'loop delay max, wave ms',
        'loop delay p99 max, after ms',
        'loop delay max, after ms',
        '/metrics scrape ms (KiB)',
      ],
      rows.map((r) => [
        r.n.toLocaleString('en-US') +
          (r.timedOut ? ` (${r.held.toLocaleString('en-US')} held when the window closed)` : ''),
        fmt.mib(r.rss),
        fmt.mib(r.heapUsed),
        fmt.kib(r.rssPerClient),
        fmt.kib(r.heapPerClient),
        fmt.fixed(r.secondsStartToReady),
        r.timedOut
          ? `> ${fmt.fixed(r.secondsStartToAllHeld, 0)} (≈ ${fmt.fixed(r.projectedSecondsStartToAllHeld, 0)} projected)`
          : fmt.fixed(r.secondsStartToAllHeld),
        r.n >= 100 ? fmt.fixed(r.tokensPerSecond) : undefined, // below that, the 2 s spread dominates
        fmt.pct(r.cpuShare),
        fmt.ms(r.lagP99MaxSec),
        fmt.ms(r.lagMaxSec),
        fmt.ms(r.steadyLagP99MaxSec),
        fmt.ms(r.steadyLagMaxSec),
        `${fmt.int(r.scrapeMs)} (${fmt.int(r.scrapeBytes / 1024)})`,
      ]),
    ),
    '',
    'One replica per row (its own process), a fresh sandbox knowing the same N clients, one shared ' +
      '`secretFile`. The replica warms every client at start; "start → all held" runs from spawning ' +
      "the process until the sandbox has issued N tokens and the replica's " +
      '`token_vendor_token_ttl_seconds` has N series; "warm rate" is tokens issued per second after ' +
      "readiness. RSS and heap used are the replica's own `process_resident_memory_bytes` / " +
      '`nodejs_heap_size_used_bytes`, read 1 s after the wave right after a full GC ' +
      "(requested through the replica's loopback inspector); per client = (value at N − value " +
      'at 1) ÷ (N − 1). Loop delay "wave": `nodejs_eventloop_lag_p99_seconds` / ' +
      '`_max_seconds` scraped every ~1 s from readiness to the end of the wave (each scrape resets ' +
      'the histogram; the scrape at readiness, covering start-up, is left out); "after": 4 scrapes ' +
      '1.5 s apart after the wave. The scrape column is the slowest of those 4 and the size of `/metrics`.' +
      (partial.length
        ? ` **Bounded:** the wave of ${partial.map((r) => r.n.toLocaleString('en-US')).join(', ')} ` +
          `clients was watched for ${SETTINGS.waveTimeoutSec} s only (BENCH_WAVE_TIMEOUT_SECONDS); ` +
          'its memory is with that many tokens held, its "after" columns were sampled while the wave ' +
          'went on, and the total is projected from the measured warm rate.'
        : ''),
  ].join('\n');
}

/**
 * @param {MachineInfo} m
 * @param {Awaited<ReturnType<typeof sdk.run>>} r
 */
function sdkSection(m, r) {
  const within = r.with.vendorRequests <= r.target;
  const perCaller = r.with.vendorRequests / r.callers;
  return [
    '## 4. Caller SDK (@token-vendor/client)',
    '',
    machineLine(m),
    '',
    `**A cache hit costs ${fmt.fixed(r.hit.p50Ns / 1000, 2)} µs per \`getToken\` at the median ` +
      `(p99 ${fmt.fixed(r.hit.p99Ns / 1000, 2)} µs; target p50 < 1 µs). Over ${r.seconds} s, ` +
      `${r.callers} callers making ${r.callsPerSecond.toLocaleString('en-US')} calls/s in all with ` +
      `${r.tokenSeconds}-s tokens sent ${r.with.vendorRequests.toLocaleString('en-US')} requests to ` +
      `the vendor with the SDK (target ≤ ${fmt.int(r.target)}: ${within ? 'met' : 'not met'}) and ` +
      `${r.without.vendorRequests.toLocaleString('en-US')} without it.**`,
    '',
    table(
      [
        '',
        'downstream calls answered',
        'failed',
        'skipped (previous call still running)',
        'vendor requests',
        'vendor requests / caller',
        'IdP requests meanwhile',
      ],
      [
        [
          'with the SDK',
          r.with.calls.toLocaleString('en-US'),
          r.with.failed,
          r.with.skipped,
          r.with.vendorRequests.toLocaleString('en-US'),
          fmt.fixed(perCaller),
          r.with.idpRequests,
        ],
        [
          'without (GET /tokens per call)',
          r.without.calls.toLocaleString('en-US'),
          r.without.failed,
          r.without.skipped,
          r.without.vendorRequests.toLocaleString('en-US'),
          fmt.fixed(r.without.vendorRequests / r.callers),
          undefined,
        ],
      ],
    ),
    '',
    `Cache hit: \`await getToken()\` of a held token, ${r.hit.calls.toLocaleString('en-US')} calls ` +
      'in batches of 500 timed with `process.hrtime` after 200,000 warm-up calls, in the bench ' +
      'process (dist/client, the built package); percentiles over the batches. Simulation: one SDK ' +
      'client per caller (as separate services would have), each caller ticking every ' +
      `${(r.callers * 1000) / r.callsPerSecond} ms; a call is the token lookup a downstream call ` +
      'needs (the downstream itself is left out); a caller whose previous call is still running ' +
      `skips its tick. The IdP issues ${r.tokenSeconds}-s tokens and the vendor refreshes them at ` +
      `3/4 of their life, a new token every ${r.refreshSeconds} s: the target is callers × ` +
      `(duration ÷ ${r.refreshSeconds} s + 1), one request per caller per token and one to start. ` +
      'The SDK holds a token for 4/5 of the life it had when received, so it asks after the ' +
      "vendor's refresh. Vendor requests are counted by " +
      "the SDK clients' transport (with) and by the bench (without). " +
      '`BENCH_SDK_SIM_SECONDS` shortens each simulation (default 60).',
  ].join('\n');
}

const HOW_TO_READ = `## How to read this

- The machine is shared and small (2 cores, other work running), so absolute numbers move
  from run to run. The figures to compare are the **ratios**, measured in the same run and
  interleaved round by round: token-vendor req/s ÷ floor req/s and ÷ ceiling req/s. A ratio
  near 1× to the floor means the framework, audit log and metrics cost no more than one
  Redis round trip; the ceiling is what plain Node with the same key check can do here.
- CPU per request is the steadier figure on a shared machine: it is what one answered request
  cost the server process (its JavaScript, its GC threads and the kernel's socket work), read
  from /proc around the measured part of each run, and it moves far less than req/s when other
  work competes for the cores. "floor CPU/request ÷ token-vendor CPU/request" is the hot-path
  ratio by cost.
- The load generator (autocannon) shares the 2 cores with the server it measures, so the
  ceiling is partly bounded by autocannon itself: the ratio to the ceiling is conservative.
- Cold burst: the target is 1 IdP request however many callers and replicas there are
  (in-process single flight, then the Redis lock); every caller should get 200.
- Scale: memory per client is the slope between N = 1 and N. Heap used is read after a full
  GC and is the figure to trust; RSS also moves with what the allocator keeps from the
  start-up and the wave, so its slope is noisy at small N (it can even come out negative).
  Loop delay is what every request on that replica waits extra while the start-up wave (or
  steady state) runs. p99 of ~1 s windows can hide one long stall per window; the "max"
  columns show it.`;

/**
 * @param {MachineInfo} m
 * @param {Awaited<ReturnType<typeof invalidation.run>>} r
 */
function invalidationSection(m, r) {
  return [
    '## 5. Invalidation propagation (admin refresh → every replica serves the new token)',
    '',
    machineLine(m),
    '',
    `**p50 ${fmt.fixed(r.p50Ms, 1)} ms, p99 ${fmt.fixed(r.p99Ms, 1)} ms** from the admin refresh's ` +
      `answer until all ${r.replicas} replicas serve the new token, over ${r.invalidations} ` +
      `invalidations (each on the next replica in turn; every replica polled one request at a ` +
      `time from the answer on, the time taken when its first answer with the new token arrived).`,
    '',
    table(
      ['measure', 'value'],
      [
        ['invalidations', r.invalidations],
        [
          'propagation p50 / p99 / max (ms)',
          `${fmt.fixed(r.p50Ms, 1)} / ${fmt.fixed(r.p99Ms, 1)} / ${fmt.fixed(r.maxMs, 1)}`,
        ],
        [
          'admin refresh answer p50 / p99 (ms)',
          `${fmt.fixed(r.adminP50Ms, 1)} / ${fmt.fixed(r.adminP99Ms, 1)}`,
        ],
        ['answers with the revoked token after the admin answer', r.staleAnswers],
        ['IdP token requests (warm-up + one per refresh)', r.idpRequests],
      ],
    ),
  ].join('\n');
}

async function main() {
  const startedAt = Date.now();
  const m = machineInfo();
  log(machineLine(m));
  if (!process.env.BENCH_SKIP_BUILD) {
    log('Building if needed (scripts/build-if-needed.js)...');
    execFileSync(process.execPath, [join(procs.ROOT, 'scripts/build-if-needed.js')], {
      cwd: procs.ROOT,
      stdio: 'inherit',
    });
  }
  work = mkdtempSync(join(os.tmpdir(), 'token-vendor-bench-'));
  const redis = await svc.startRedis(work);
  log(`Throwaway redis-server at ${redis.url}; working files in ${work}`);
  /** @type {PhaseContext} */
  const ctx = { work, redis };
  /** @type {string[]} */
  const sections = [];
  /** @type {string[]} */
  const failures = [];
  /**
   * Runs one phase (unless BENCH_PHASES leaves it out) and renders its section; a phase that
   * fails gets a section saying so, and the others still run.
   * @template R
   * @param {string} key
   * @param {string} title
   * @param {(ctx: PhaseContext, settings: BenchSettings, log: Log) => Promise<R>} fn
   * @param {(m: MachineInfo, result: R) => string} render
   */
  const phase = async (key, title, fn, render) => {
    if (!SETTINGS.phases.includes(key) || interrupted) return;
    log(`\n== ${title}`);
    try {
      const result = await fn(ctx, SETTINGS, log);
      const text = render(m, result);
      sections.push(text);
      log(`\n${text}\n`);
    } catch (caught) {
      if (interrupted) return;
      const e = caught instanceof Error ? caught : new Error(String(caught));
      const text = `## ${title}\n\n${machineLine(m)}\n\n**Failed:** ${e.message}`;
      sections.push(text);
      failures.push(title);
      log(`\n${title} FAILED: ${e.stack ?? e.message}\n`);
    }
  };
  await phase('hot', 'Hot path', hotPath.run, hotSection);
  await phase('cold', 'Cold burst', coldBurst.run, coldSection);
  await phase('scale', 'Scale', scale.run, scaleSection);
  await phase('sdk', 'Caller SDK', sdk.run, sdkSection);
  await phase('invalidation', 'Invalidation propagation', invalidation.run, invalidationSection);
  const totalSec = (Date.now() - startedAt) / 1000;

  const doc = [
    '# token-vendor benchmark results',
    '',
    `Written by \`npm run bench\` (bench/run.js) in ${totalSec.toFixed(0)} s. See [README.md](README.md) ` +
      'for what each number means and how to run it.',
    '',
    machineLine(m),
    '',
    ...sections.flatMap((s) => [s, '']),
    HOW_TO_READ,
    '',
  ].join('\n');
  // A run of some phases only (BENCH_PHASES) prints its sections but keeps bench/results.md,
  // which holds every phase of one run.
  const partial = ALL_PHASES.some((p) => !SETTINGS.phases.includes(p));
  if (partial && !interrupted) {
    log(
      `Partial run (BENCH_PHASES=${SETTINGS.phases.join(',')}): bench/results.md left as it was.`,
    );
  } else if (!interrupted) {
    writeFileSync(join(__dirname, 'results.md'), doc);
    log(`${HOW_TO_READ}\n\nWrote bench/results.md; total ${totalSec.toFixed(0)} s.`);
  }
  return failures.length === 0;
}

main()
  .then(async (ok) => {
    await cleanup();
    process.exit(ok ? 0 : 1);
  })
  .catch(async (/** @type {Error} */ e) => {
    log(`bench failed: ${e.stack ?? e.message}`);
    await cleanup();
    process.exit(1);
  });
