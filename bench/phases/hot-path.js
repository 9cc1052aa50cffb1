// @ts-check
'use strict';
// Phase 1: cache-hit GET /tokens/:clientId throughput and latency, token-vendor beside the
// floor (key check + one Redis GET), the ceiling (key check, answer from memory) and the
// NestJS reference (the floor's work in the smallest NestJS-on-Fastify app), run in
// alternation; the median of each is reported.
const { readFileSync } = require('node:fs');
const { execFileSync } = require('node:child_process');
const autocannon = require('autocannon');
const svc = require('../lib/services');
const { assertAlive, stop } = require('../lib/procs');
const { median } = require('../lib/report');
const { startHotServers, TOKEN_PATH } = require('../lib/hot-servers');
const { orderOfRound } = require('../lib/run-order');

/** @typedef {import('../types/bench').BenchSettings} BenchSettings */
/** @typedef {import('../types/bench').PhaseContext} PhaseContext */
/** @typedef {import('../types/bench').Log} Log */
/** @typedef {import('../lib/procs').BenchChild} BenchChild */
/** @typedef {'floor' | 'ceiling' | 'nest' | 'vendor' | 'vendorJwt'} TargetKey */
/** @typedef {{ user: number, total: number }} CpuPerRequest */
/** @typedef {import('autocannon').Result & { cpuPerRequest: CpuPerRequest }} MeasuredRun */
/** @typedef {ReturnType<typeof summarize>} RunSummary */
/**
 * A target's medians over the rounds (and each round's figures).
 * @typedef {object} MedianRow
 * @property {string} label
 * @property {number} rps
 * @property {number} p50
 * @property {number} p99
 * @property {number} cpuUs
 * @property {number} cpuUserUs
 * @property {number[]} cpuRuns
 * @property {number} non2xx
 * @property {number} errors
 * @property {number[]} runs
 * @property {{ keys: string, bodyBytes: number, headerCount: number }} shape
 */

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/**
 * CPU time the process has used so far (user, system), in µs, all its threads included.
 * @param {number | undefined} pid
 */
function cpuMicros(pid) {
  // Fields after the command name: state is 0, utime 11, stime 12 (see proc(5)).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const toMicros = (/** @type {string} */ ticks) => (Number(ticks) * 1e6) / CLOCK_TICKS_PER_SECOND;
  return { user: toMicros(fields[11]), system: toMicros(fields[12]) };
}

/**
 * One run: a warm-up, then the measured load. The server's CPU time is read around the
 * measured part only, so `cpuPerRequest` is what one answered request cost the server process
 * (JavaScript, GC threads and the kernel's socket work), whatever else the machine was doing.
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {BenchSettings} settings
 * @param {number | undefined} pid
 * @returns {Promise<MeasuredRun>}
 */
async function cannon(url, headers, settings, pid) {
  const options = { url, headers, connections: settings.connections, pipelining: 1 };
  await autocannon({ ...options, duration: settings.warmupSec });
  const before = cpuMicros(pid);
  // cpuPerRequest is set below, once the load is over.
  const result = /** @type {MeasuredRun} */ (
    await autocannon({ ...options, duration: settings.durationSec })
  );
  const after = cpuMicros(pid);
  const answered = result.requests.total;
  result.cpuPerRequest = {
    user: (after.user - before.user) / answered,
    total: (after.user + after.system - before.user - before.system) / answered,
  };
  return result;
}

/** @param {MeasuredRun} result */
function summarize(result) {
  return {
    cpuUs: result.cpuPerRequest.total,
    cpuUserUs: result.cpuPerRequest.user,
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
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
    const { auth, jwtAuth, sandbox, vendor, floor, ceiling, nest } = await startHotServers(
      work,
      redis,
      started,
      {
        name: 'hot',
        vendor: { nodeArgs: settings.vendorNodeArgs },
        references: true,
      },
    );
    const path = TOKEN_PATH;

    /**
     * @type {{ key: TargetKey, label: string, url: string, pid: number | undefined,
     *   headers?: Record<string, string> }[]}
     */
    const targets = [
      {
        key: 'floor',
        label: 'floor: node:http + key check + Redis GET',
        url: floor.url,
        pid: floor.child.pid,
      },
      {
        key: 'ceiling',
        label: 'ceiling: node:http + key check, from memory',
        url: ceiling.url,
        pid: ceiling.child.pid,
      },
      {
        key: 'nest',
        label: 'reference: NestJS on Fastify + key check + Redis GET',
        url: nest.url,
        pid: nest.child.pid,
      },
      {
        key: 'vendor',
        label: 'token-vendor (Nest + Fastify, audit log, metrics)',
        url: vendor.url,
        pid: vendor.child.pid,
      },
      {
        key: 'vendorJwt',
        label: 'token-vendor, JWT caller (verified once, then from the cache)',
        url: vendor.url,
        pid: vendor.child.pid,
        headers: jwtAuth,
      },
    ];

    // Same answer shape everywhere (the vendor adds security and request-id headers).
    /** @type {Record<string, { keys: string, bodyBytes: number, headerCount: number }>} */
    const shapes = {};
    for (const t of targets) {
      const r = await svc.http(`${t.url}${path}`, { headers: t.headers ?? auth });
      if (r.status !== 200) throw new Error(`${t.key} answered ${r.status}: ${r.text}`);
      shapes[t.key] = {
        keys: Object.keys(/** @type {object} */ (r.json))
          .sort()
          .join(','),
        bodyBytes: Buffer.byteLength(r.text),
        headerCount: [...r.headers.keys()].length,
      };
    }
    if (new Set(Object.values(shapes).map((s) => s.keys)).size !== 1) {
      throw new Error(`answers differ in shape: ${JSON.stringify(shapes)}`);
    }
    const idpBefore = (await sandbox.stats()).tokenRequests;

    /** @type {Record<string, RunSummary[]>} */
    const runs = Object.fromEntries(targets.map((t) => [t.key, []]));
    for (let round = 1; round <= settings.rounds; round++) {
      // A balanced order (see lib/run-order.js): every server at every place, and right after
      // every other server, once per cycle of rounds.
      const order = orderOfRound(targets, round);
      for (const t of order) {
        for (const child of started) assertAlive(child);
        log(`  hot path round ${round}/${settings.rounds}: ${t.key} ...`);
        const s = summarize(await cannon(`${t.url}${path}`, t.headers ?? auth, settings, t.pid));
        runs[t.key].push(s);
        log(
          `    ${Math.round(s.rps)} req/s, p50 ${s.p50} ms, p99 ${s.p99} ms, ` +
            `${s.cpuUs.toFixed(1)} µs CPU/request` +
            (s.non2xx || s.errors ? `, non-2xx ${s.non2xx}, errors ${s.errors}` : ''),
        );
      }
    }
    const idpDuring = (await sandbox.stats()).tokenRequests - idpBefore;

    // Filled for every target key just below.
    const med = /** @type {Record<TargetKey, MedianRow>} */ ({});
    for (const t of targets) {
      const r = runs[t.key];
      med[t.key] = {
        label: t.label,
        rps: median(r.map((x) => x.rps)),
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
        cpuUs: median(r.map((x) => x.cpuUs)),
        cpuUserUs: median(r.map((x) => x.cpuUserUs)),
        cpuRuns: r.map((x) => x.cpuUs),
        non2xx: r.reduce((a, x) => a + x.non2xx, 0),
        errors: r.reduce((a, x) => a + x.errors, 0),
        runs: r.map((x) => Math.round(x.rps)),
        shape: shapes[t.key],
      };
    }
    return {
      median: med,
      ratios: {
        vendorToFloor: med.vendor.rps / med.floor.rps,
        vendorToCeiling: med.vendor.rps / med.ceiling.rps,
        floorToCeiling: med.floor.rps / med.ceiling.rps,
        // The yardstick's own premise: what NestJS on Fastify with a Redis GET per request
        // (nothing else) reaches against the floor here, and the service against it.
        nestToFloor: med.nest.rps / med.floor.rps,
        vendorToNest: med.vendor.rps / med.nest.rps,
        // A workload JWT caller against a key caller on the same replica (target ≥ 0.9).
        jwtToKey: med.vendorJwt.rps / med.vendor.rps,
        jwtToKeyCpu: med.vendor.cpuUs / med.vendorJwt.cpuUs,
        vendorToNestCpu: med.nest.cpuUs / med.vendor.cpuUs,
        // Requests per CPU-second, vendor ÷ floor: the same ratio measured by cost, not speed.
        vendorToFloorCpu: med.floor.cpuUs / med.vendor.cpuUs,
        vendorToCeilingCpu: med.ceiling.cpuUs / med.vendor.cpuUs,
      },
      idpRequestsDuringLoad: idpDuring,
      vendorPid: vendor.child.pid,
    };
  } finally {
    await Promise.all(started.map((c) => stop(c)));
  }
}

module.exports = { run };
