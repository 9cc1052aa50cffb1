#!/usr/bin/env node
// @ts-check
'use strict';
// `node bench/profile.js`: where does token-vendor spend CPU on the cache-hit hot path?
// Runs the vendor (production entry point, LOG_LEVEL=info, stdout to /dev/null) under
// `node --cpu-prof`, loads it with autocannon (32 connections, 10 s after a 2 s warm-up),
// stops it with SIGTERM (the profile is written on exit), and prints the top self-time
// functions and the self time per package. Not part of `npm run bench`: profiling slows the
// process, so its numbers are not comparable with the benchmark's.
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const autocannon = require('autocannon');
const procs = require('./lib/procs');
const svc = require('./lib/services');
const { machineInfo, machineLine, table } = require('./lib/report');
const { startHotServers, TOKEN_PATH } = require('./lib/hot-servers');

const DURATION_SEC = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const TOP = Number(process.env.PROFILE_TOP ?? 25);

/** @typedef {import('node:inspector').Profiler.Profile} CpuProfile */
/** @typedef {import('node:inspector').Profiler.ProfileNode} ProfileNode */

/** @param {string} url */
function category(url) {
  if (!url) return '(native / V8)';
  if (url.startsWith('node:')) return 'node core';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.includes('/dist/apps/')) return 'token-vendor (dist bundle)';
  return url;
}

/** @param {CpuProfile} profile */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  /** @param {number} id */
  const nodeOf = (id) => {
    const node = byId.get(id);
    if (!node) throw new Error(`the profile has no node ${id}`);
    return node;
  };
  /** @type {Map<number, number>} */
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** @type {Map<number, number>} */
  const selfUs = new Map();
  (profile.samples ?? []).forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0)),
  );
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const urlOf = (/** @type {ProfileNode} */ node) => node.callFrame.url.replace(/^file:\/\//, '');
  const special = (/** @type {ProfileNode} */ node) =>
    !node.callFrame.url && node.callFrame.functionName.startsWith('(');
  /**
   * The nearest frame (itself included) whose url satisfies `test`.
   * @param {number} id
   * @param {(url: string) => boolean} test
   */
  const nearest = (id, test) => {
    for (
      let cur = /** @type {number | undefined} */ (id);
      cur !== undefined;
      cur = parent.get(cur)
    ) {
      const node = nodeOf(cur);
      if (node.callFrame.url && test(urlOf(node))) return node;
    }
    return undefined;
  };
  /** @param {ProfileNode} node */
  const label = (node) => {
    const f = node.callFrame;
    const short = urlOf(node)
      .replace(/^.*node_modules\//, '')
      .replace(procs.ROOT + '/', '');
    return `${f.functionName || '(anonymous)'}${short ? ` ${short}:${f.lineNumber + 1}` : ''}`;
  };
  /** @typedef {Map<string, number>} Tally */
  /** @type {Tally} */
  const fns = new Map();
  /** @type {Tally} */
  const cats = new Map();
  /** @type {Tally} */
  const owners = new Map();
  /**
   * @param {Tally} m
   * @param {string} k
   * @param {number} us
   */
  const add = (m, k, us) => m.set(k, (m.get(k) ?? 0) + us);
  for (const [id, us] of selfUs) {
    const node = nodeOf(id);
    if (special(node)) {
      for (const m of [fns, cats, owners]) add(m, node.callFrame.functionName, us);
      continue;
    }
    // Native frames (no url) are charged to the nearest JavaScript frame that called them.
    const js = nearest(id, () => true);
    add(
      fns,
      node.callFrame.url ? label(node) : `${label(node)} [native] ← ${js ? label(js) : '?'}`,
      us,
    );
    add(cats, js ? category(urlOf(js)) : '(native / V8)', us);
    // The owner: the nearest frame outside Node's core, i.e. the package that caused the work.
    const owner = nearest(id, (u) => !u.startsWith('node:'));
    add(owners, owner ? category(urlOf(owner)) : '(node core only)', us);
  }
  const pct = (/** @type {number} */ us) => `${((us / total) * 100).toFixed(1)} %`;
  /**
   * @param {Tally} m
   * @param {number} n
   */
  const sorted = (m, n) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => [k, pct(us)]);
  return {
    totalMs: total / 1000,
    functions: sorted(fns, TOP),
    categories: sorted(cats, 20),
    owners: sorted(owners, 20),
  };
}

/** @param {string} work */
async function main(work) {
  const m = machineInfo();
  const redis = await svc.startRedis(work);
  const profDir = join(work, 'prof');
  const { auth, vendor } = await startHotServers(work, redis, [], {
    name: 'profile',
    vendor: { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] },
  });
  const url = `${vendor.url}${TOKEN_PATH}`;
  const result = await autocannon({
    url,
    headers: auth,
    connections: 32,
    duration: DURATION_SEC,
    warmup: { connections: 32, duration: 2 },
  });
  await procs.stop(vendor.child, 15_000);
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written');
  /** @type {unknown} */
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
  const s = summarize(/** @type {CpuProfile} */ (profile));
  console.log(machineLine(m));
  console.log(
    `\nProfiled token-vendor: ${Math.round(result.requests.average)} req/s under --cpu-prof ` +
      `(p99 ${result.latency.p99} ms), ${(s.totalMs / 1000).toFixed(1)} s of samples (start-up included).\n`,
  );
  console.log(
    table(['self time by package (native time to its JS caller)', 'share'], s.categories),
  );
  console.log();
  console.log(table(['self time by owner (nearest frame outside node core)', 'share'], s.owners));
  console.log();
  console.log(table([`top ${TOP} functions by self time`, 'share'], s.functions));
}

procs.runScript('token-vendor-profile-', main);
