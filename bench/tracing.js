#!/usr/bin/env node
// @ts-check
'use strict';
// `node bench/tracing.js`: what W3C trace context and OpenTelemetry cost a cache-hit
// GET /tokens. Three cases, interleaved round by round on the same build: tracing off with no
// `traceparent` (what every caller pays), off with a `traceparent` on every request (passed on
// to the IdP: an AsyncLocalStorage run per request), and on (OTEL_EXPORTER_OTLP_ENDPOINT set,
// a server span per request exported to a loopback OTLP/HTTP receiver that discards them).
// Each case is its own replica process (memory store); CPU per request is read from /proc.
// Not part of `npm run bench`.
const { createServer } = require('node:http');
const { mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const autocannon = require('autocannon');
const procs = require('./lib/procs');
const svc = require('./lib/services');
const { machineInfo, machineLine, table } = require('./lib/report');

const ROUNDS = Number(process.env.TRACING_ROUNDS ?? 3);
const SECONDS = Number(process.env.TRACING_SECONDS ?? 6);
const CONNECTIONS = 32;
const CLIENT_ID = 'bench.client';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

/** @typedef {import('./lib/services').RunningVendor} RunningVendor */
/** @typedef {{ rps: number, p99: number, cpuPerRequest: number }} Measured */
/** @typedef {[name: string, vendor: RunningVendor, headers: Record<string, string>]} Case */

/** @param {number | undefined} pid */
function cpuMicros(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
}

async function startDiscardingReceiver() {
  let spans = 0;
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (/** @type {Buffer} */ c) => (bytes += c.length));
    req.on('end', () => {
      if (bytes > 0) spans += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
  return {
    endpoint: `http://127.0.0.1:${procs.listeningPort(server)}`,
    exports: () => spans,
    server,
  };
}

/**
 * @param {RunningVendor} vendor
 * @param {Record<string, string>} headers
 * @returns {Promise<Measured>}
 */
async function measure(vendor, headers) {
  const url = `${vendor.url}/tokens/${CLIENT_ID}`;
  const before = cpuMicros(vendor.child.pid);
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: SECONDS });
  const cpu = cpuMicros(vendor.child.pid) - before;
  if (result.non2xx || result.errors) throw new Error(`${vendor.name}: not every request got 200`);
  return {
    rps: result.requests.average,
    p99: result.latency.p99,
    cpuPerRequest: cpu / result.requests.total,
  };
}

const median = (/** @type {number[]} */ xs) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

procs.runScript('token-vendor-tracing-', async (work) => {
  const redis = await svc.startRedis(work);
  const sandbox = await svc.startSandbox(work, 'sandbox', [
    { clientId: CLIENT_ID, secret: 's3cret' },
  ]);
  const caller = svc.mintCallerKey();
  mkdirSync(join(work, 'secrets'));
  const secretFile = join(work, 'secrets', CLIENT_ID);
  writeFileSync(secretFile, 's3cret\n');
  const configPath = join(work, 'config.yaml');
  svc.writeVendorConfig(configPath, {
    tokenUrl: sandbox.tokenUrl,
    environment: 'uat',
    clients: [{ clientId: CLIENT_ID, secretFile }],
    callerSha256: caller.sha256,
  });
  const receiver = await startDiscardingReceiver();
  const common = { configPath, redisUrl: redis.url, encryptionKeys: svc.encryptionKeys() };
  const off = await svc.startVendor(work, 'tracing-off', { ...common, keyPrefix: 'tv-off:' });
  const on = await svc.startVendor(work, 'tracing-on', {
    ...common,
    keyPrefix: 'tv-on:',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint },
  });
  const auth = { authorization: `Bearer ${caller.key}` };
  // TRACING_BASE_MAIN: the main.js of a build from before tracing, as a reference.
  const baseMain = process.env.TRACING_BASE_MAIN;
  const base = baseMain
    ? await svc.startVendor(work, 'before-tracing', {
        ...common,
        keyPrefix: 'tv-base:',
        nodeArgs: [baseMain], // node runs the first script; the usual main.js is only an argument
      })
    : undefined;
  /** @type {Case[]} */
  const cases = [
    ...(base ? [/** @type {Case} */ (['build before tracing (reference)', base, auth])] : []),
    ['off, no traceparent', off, auth],
    ['off, traceparent passed on', off, { ...auth, traceparent: TRACEPARENT }],
    ['on, traceparent (server span exported)', on, { ...auth, traceparent: TRACEPARENT }],
  ];
  for (const [, vendor, headers] of cases) {
    await autocannon({
      url: `${vendor.url}/tokens/${CLIENT_ID}`,
      headers,
      connections: 8,
      amount: 5000,
    });
  }
  const results = cases.map(() => /** @type {Measured[]} */ ([]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < cases.length; i++) results[i].push(await measure(cases[i][1], cases[i][2]));
  }
  const offIndex = base ? 1 : 0;
  const reference = median(results[offIndex].map((r) => r.cpuPerRequest));
  const rows = cases.map(([name], i) => {
    const cpu = median(results[i].map((r) => r.cpuPerRequest));
    return [
      name,
      Math.round(median(results[i].map((r) => r.rps))).toLocaleString('en-US'),
      results[i].map((r) => r.cpuPerRequest.toFixed(0)).join(' '),
      median(results[i].map((r) => r.p99)).toFixed(0),
      cpu.toFixed(0),
      `${cpu - reference >= 0 ? '+' : ''}${(cpu - reference).toFixed(0)} (${(((cpu - reference) / reference) * 100).toFixed(1)} %)`,
    ];
  });
  console.log(machineLine(machineInfo()));
  console.log(
    `${ROUNDS} rounds × ${SECONDS} s per case, ${CONNECTIONS} connections, medians; ` +
      `OTLP exports received: ${receiver.exports()}`,
  );
  console.log(
    table(
      [
        'case',
        'req/s',
        'CPU µs/request by round',
        'p99 ms',
        'CPU µs/request',
        'CPU vs off, no traceparent',
      ],
      rows,
    ),
  );
  receiver.server.close();
});
