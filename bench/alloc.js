#!/usr/bin/env node
// @ts-check
'use strict';
// `node bench/alloc.js`: how much garbage one cache-hit request leaves behind, token-vendor
// beside the floor and the ceiling of the hot-path benchmark. Each server runs with
// `--trace-gc`; the heap freed by every collection (size before minus size after) plus what the
// heap grew by, over a fixed number of requests, divided by that number, is what one request
// allocates. Unlike req/s or CPU time it hardly moves with what else the machine is doing,
// so it is the figure to watch when cutting per-request allocations. Not part of
// `npm run bench`.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const autocannon = require('autocannon');
const procs = require('./lib/procs');
const svc = require('./lib/services');
const { machineInfo, machineLine, table } = require('./lib/report');
const { startHotServers, TOKEN_PATH } = require('./lib/hot-servers');

const WARMUP_REQUESTS = Number(process.env.ALLOC_WARMUP_REQUESTS ?? 20_000);
const REQUESTS = Number(process.env.ALLOC_REQUESTS ?? 100_000);
const CONNECTIONS = 32;

/**
 * Collections so far in a `--trace-gc` output: how many young-generation ones, the MB every
 * collection freed (size before minus size after, all kinds), and the heap size after the
 * last one.
 * @param {string} path
 */
function collections(path) {
  let scavenges = 0;
  let freedMb = 0;
  let heapMb = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m =
      /(Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Sweep)\S*\s+([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/.exec(
        line,
      );
    if (!m) continue;
    if (m[1] === 'Scavenge') scavenges += 1;
    freedMb += Number(m[2]) - Number(m[3]);
    heapMb = Number(m[3]);
  }
  return { scavenges, freedMb, heapMb };
}

/**
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {string} tracePath
 */
async function measure(url, headers, tracePath) {
  await autocannon({ url, headers, connections: CONNECTIONS, amount: WARMUP_REQUESTS });
  const before = collections(tracePath);
  const result = await autocannon({ url, headers, connections: CONNECTIONS, amount: REQUESTS });
  await procs.sleep(500); // the last trace lines reach the file
  const after = collections(tracePath);
  const answered = result.requests.total;
  if (result.non2xx || result.errors) throw new Error(`${url}: not every request got 200`);
  // Allocated = freed by the collections in between + what the heap grew by.
  const allocatedMb = after.freedMb - before.freedMb + (after.heapMb - before.heapMb);
  return {
    bytesPerRequest: (allocatedMb * 1024 * 1024) / answered,
    scavengesPer1000: ((after.scavenges - before.scavenges) * 1000) / answered,
    answered,
  };
}

/** @param {string} work */
async function main(work) {
  const m = machineInfo();
  const redis = await svc.startRedis(work);
  const trace = (/** @type {string} */ name) => join(work, `${name}.trace`);
  const { auth, vendor, floor, ceiling, nest } = await startHotServers(work, redis, [], {
    name: 'alloc',
    vendor: { nodeArgs: ['--trace-gc'], stdoutPath: trace('vendor') },
    references: true,
    referenceOptions: (mode) => ({ execArgv: ['--trace-gc'], stdoutPath: trace(mode) }),
  });
  const path = TOKEN_PATH;

  /** @type {string[][]} */
  const rows = [];
  for (const [label, url, name] of [
    ['ceiling: node:http + key check, from memory', ceiling.url, 'ceiling'],
    ['floor: node:http + key check + Redis GET', floor.url, 'floor'],
    ['reference: NestJS on Fastify + key check + Redis GET', nest.url, 'nest'],
    ['token-vendor (Nest + Fastify, audit log, metrics)', vendor.url, 'vendor'],
  ]) {
    process.stdout.write(`  ${name} ...\n`);
    const r = await measure(`${url}${path}`, auth, trace(name));
    rows.push([
      label,
      Math.round(r.bytesPerRequest).toLocaleString('en-US'),
      r.scavengesPer1000.toFixed(2),
      r.answered.toLocaleString('en-US'),
    ]);
  }
  console.log(`\n${machineLine(m)}\n`);
  console.log(
    table(
      ['server', 'allocated per request, bytes', 'scavenges per 1,000 requests', 'requests'],
      rows,
    ),
  );
}

procs.runScript('token-vendor-alloc-', main);
