// @ts-check
'use strict';
// Starting the processes under test: a throwaway redis-server, the sandbox IdP, token-vendor
// replicas (the production entry point), and the bare node:http floor/ceiling servers.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { createHash, randomBytes } = require('node:crypto');
const { execFile } = require('node:child_process');
const { Redis } = require('ioredis');
const { ROOT, freePort, start, stop, waitFor, sleep } = require('./procs');

/** @typedef {import('./procs').BenchChild} BenchChild */
/** @typedef {import('./procs').ChildEnv} ChildEnv */

const VENDOR_MAIN = join(ROOT, 'dist/apps/token-vendor/main.js');
const SANDBOX_MAIN = join(ROOT, 'dist/apps/identity-sandbox/main.js');

/**
 * An answer to `http()`: `json` is the parsed body (undefined when it is not JSON), of a shape
 * the caller names where it reads it.
 * @typedef {{ status: number, headers: Headers, text: string, json: unknown }} HttpAnswer
 */

/**
 * GET/POST a loopback URL; JSON answers are parsed.
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: unknown }} [request]
 * @returns {Promise<HttpAnswer>}
 */
async function http(url, { method = 'GET', headers = {}, body } = {}) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  /** @type {unknown} */
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** @typedef {{ url: string, port: number, child: BenchChild }} RunningRedis */

/**
 * redis-server on a free loopback port, nothing persisted. Never the shared 6379.
 * @param {string} workDir
 * @returns {Promise<RunningRedis>}
 */
async function startRedis(workDir) {
  const port = await freePort();
  const child = start(
    'redis-server',
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--protected-mode',
      'no',
      '--dir',
      workDir,
    ],
    { stderrPath: join(workDir, 'redis.err') },
  );
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(
    'redis-server',
    async () => {
      const probe = new Redis(port, '127.0.0.1', {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        return (await probe.ping()) === 'PONG';
      } finally {
        probe.disconnect();
      }
    },
    { timeoutMs: 10_000, alive: [child] },
  );
  return { url, port, child };
}

/**
 * A client the sandbox IdP knows (apps/identity-sandbox SANDBOX_CLIENTS).
 * @typedef {{ clientId: string, secret: string, scopes?: string[] }} SandboxClient
 */

/**
 * The sandbox's counters (GET /_sandbox/stats): token requests, tokens issued, requests
 * answered with the configured fault.
 * @typedef {{ tokenRequests: number, issued: number, faulted: number }} SandboxStats
 */

/**
 * @typedef {object} RunningSandbox
 * @property {string} url
 * @property {string} tokenUrl
 * @property {BenchChild} child
 * @property {() => Promise<SandboxStats>} stats
 * @property {() => Promise<HttpAnswer>} reset
 * @property {(fault: { mode: string, retryAfter?: number }) => Promise<HttpAnswer>} setFault
 * @property {() => Promise<HttpAnswer>} clearFault
 */

/**
 * The sandbox IdP as its own process, with `clients` written to a JSON file.
 * @param {string} workDir
 * @param {string} name
 * @param {SandboxClient[]} clients
 * @param {ChildEnv} [extraEnv]
 * @returns {Promise<RunningSandbox>}
 */
async function startSandbox(workDir, name, clients, extraEnv = {}) {
  const port = await freePort();
  const clientsFile = join(workDir, `${name}.clients.json`);
  writeFileSync(clientsFile, JSON.stringify(clients));
  const child = start(name, process.execPath, [SANDBOX_MAIN], {
    env: {
      SANDBOX_PORT: port,
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_CLIENTS: clientsFile,
      ...extraEnv,
    },
    stdoutPath: join(workDir, `${name}.log`),
    stderrPath: join(workDir, `${name}.err`),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor('the sandbox IdP', async () => (await http(`${url}/health`)).status === 200, {
    timeoutMs: 30_000,
    alive: [child],
  });
  return {
    url,
    tokenUrl: `${url}/connect/token`,
    child,
    stats: async () => /** @type {SandboxStats} */ ((await http(`${url}/_sandbox/stats`)).json),
    reset: () => http(`${url}/_sandbox/reset`, { method: 'POST', body: {} }),
    setFault: (fault) => http(`${url}/_sandbox/fault`, { method: 'POST', body: fault }),
    clearFault: () => http(`${url}/_sandbox/fault`, { method: 'DELETE' }),
  };
}

/**
 * A caller key and its SHA-256 (what the configuration holds).
 * @returns {{ key: string, sha256: string }}
 */
function mintCallerKey() {
  const key = randomBytes(32).toString('base64url');
  return { key, sha256: createHash('sha256').update(key, 'utf8').digest('hex') };
}

function encryptionKeys() {
  return `bench1:${randomBytes(32).toString('base64')}`;
}

/**
 * @typedef {object} VendorConfig
 * @property {string} tokenUrl
 * @property {number} [timeoutMs]
 * @property {string} environment
 * @property {{ clientId: string, secretFile: string, scope?: string }[]} clients
 * @property {string} callerSha256
 * @property {{ issuer: string, subject: string }} [workloadIssuer]
 * @property {number} [minTtlSeconds]
 */

/**
 * The vendor's YAML configuration: one environment, `clients` (all reading the same secret
 * file), one admin caller allowed every client; `minTtlSeconds` for IdPs with short tokens.
 * @param {string} path
 * @param {VendorConfig} config
 */
function writeVendorConfig(
  path,
  {
    tokenUrl,
    timeoutMs = 5000,
    environment,
    clients,
    callerSha256,
    workloadIssuer,
    minTtlSeconds = 30,
  },
) {
  const lines = [
    'environments:',
    `  ${environment}:`,
    `    tokenUrl: ${tokenUrl}`,
    `    timeoutMs: ${timeoutMs}`,
    'clients:',
  ];
  for (const c of clients) {
    lines.push(
      `  - clientId: ${c.clientId}`,
      `    environment: ${environment}`,
      `    secretFile: ${c.secretFile}`,
    );
    if (c.scope) lines.push(`    scope: ${c.scope}`);
  }
  lines.push(
    'callers:',
    '  - name: bench-caller',
    `    keySha256: [${callerSha256}]`,
    "    clients: ['*']",
    '    admin: true',
  );
  // A caller without a key: a workload JWT from the sandbox's workload issuer (README "Callers
  // without keys"), so the hot path can compare a JWT caller with a key caller.
  if (workloadIssuer) {
    lines.push(
      '  - name: bench-workload',
      `    jwt: { issuer: sandbox, subject: ${workloadIssuer.subject} }`,
      "    clients: ['*']",
      'callerIssuers:',
      '  - name: sandbox',
      `    issuer: ${workloadIssuer.issuer}`,
      '    audience: token-vendor',
    );
  }
  lines.push('refresh:', '  ratio: 0.75', `  minTtlSeconds: ${minTtlSeconds}`, '');
  writeFileSync(path, lines.join('\n'));
}

/**
 * @typedef {object} VendorOptions
 * @property {string} configPath
 * @property {string} redisUrl
 * @property {string} keyPrefix
 * @property {string} encryptionKeys
 * @property {string[]} [nodeArgs] Node's flags (before the entry point)
 * @property {string} [logLevel]
 * @property {ChildEnv} [env]
 * @property {string} [stdoutPath]
 * @property {boolean} [waitReady] false: resolve once started, before /health/ready answers
 */

/**
 * @typedef {object} RunningVendor
 * @property {string} name
 * @property {string} url
 * @property {number} port
 * @property {string} metricsUrl
 * @property {BenchChild} child
 * @property {number} startedAt
 * @property {number} [readyAt]
 */

/**
 * One token-vendor replica: the production entry point, Redis, generated encryption keys,
 * LOG_LEVEL=info (audit log and metrics on, as in production), stdout to `stdoutPath`
 * (default /dev/null); `env` adds or overrides environment variables (for experiments).
 * @param {string} workDir
 * @param {string} name
 * @param {VendorOptions} opts
 * @returns {Promise<RunningVendor>}
 */
async function startVendor(workDir, name, opts) {
  const port = await freePort();
  const metricsPort = await freePort();
  const nodeArgs = [...(opts.nodeArgs ?? []), VENDOR_MAIN];
  const startedAt = Date.now();
  const child = start(name, process.execPath, nodeArgs, {
    env: {
      PORT: port,
      METRICS_PORT: metricsPort,
      HOST: '127.0.0.1',
      TOKEN_VENDOR_CONFIG: opts.configPath,
      REDIS_URL: opts.redisUrl,
      REDIS_KEY_PREFIX: opts.keyPrefix,
      TOKEN_VENDOR_ENCRYPTION_KEYS: opts.encryptionKeys,
      LOG_LEVEL: opts.logLevel ?? 'info',
      ...opts.env,
    },
    stdoutPath: opts.stdoutPath,
    stderrPath: join(workDir, `${name}.err`),
  });
  const url = `http://127.0.0.1:${port}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  /** @type {RunningVendor} */
  const vendor = { name, url, port, metricsUrl, child, startedAt };
  if (opts.waitReady !== false) await waitVendorReady(vendor);
  return vendor;
}

/**
 * Waits for the replica's readiness and notes when it came (`readyAt`).
 * @param {RunningVendor} vendor
 * @returns {Promise<RunningVendor & { readyAt: number }>}
 */
async function waitVendorReady(vendor, timeoutMs = 120_000) {
  await waitFor(
    `${vendor.name} /health/ready`,
    async () => (await http(`${vendor.url}/health/ready`)).status === 200,
    { timeoutMs, intervalMs: 50, alive: [vendor.child] },
  );
  return Object.assign(vendor, { readyAt: Date.now() });
}

/**
 * A full GC in a process started with `--inspect=127.0.0.1:<port>` (see gc-helper.js).
 * @param {number} inspectorPort
 * @returns {Promise<void>}
 */
function collectGarbage(inspectorPort) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--experimental-websocket', join(__dirname, 'gc-helper.js'), String(inspectorPort)],
      { timeout: 30_000 },
      (error, _stdout, stderr) =>
        error ? reject(new Error(`GC request failed: ${stderr || error.message}`)) : resolve(),
    );
  });
}

/** @typedef {'floor' | 'ceiling' | 'nest'} ReferenceMode */

/**
 * The script of each reference server of the hot path.
 * @type {Record<ReferenceMode, string>}
 */
const REFERENCE_SCRIPTS = {
  floor: 'bare-server.js',
  ceiling: 'bare-server.js',
  nest: 'nest-reference-server.js',
};

/** @typedef {{ name: ReferenceMode, url: string, child: BenchChild }} RunningReference */

/**
 * The message a reference server sends its parent once listening.
 * @typedef {{ port: number }} ListeningMessage
 */

/**
 * A reference server of the hot path (floor, ceiling: bare node:http; nest: the NestJS
 * reference), forked with IPC; resolves with its URL.
 * @param {string} workDir
 * @param {ReferenceMode} mode
 * @param {ChildEnv} env
 * @param {{ execArgv?: string[], stdoutPath?: string }} [options]
 * @returns {Promise<RunningReference>}
 */
async function startReference(workDir, mode, env, { execArgv = [], stdoutPath } = {}) {
  const child = start(`${mode}-server`, join(__dirname, '..', REFERENCE_SCRIPTS[mode]), [], {
    env: { BARE_MODE: mode, ...env },
    stdoutPath,
    stderrPath: join(workDir, `${mode}.err`),
    ipc: true,
    execArgv,
  });
  /** @type {number} */
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} server did not start`)), 15_000);
    child.once('message', (/** @type {ListeningMessage} */ m) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} server exited with ${code}`));
    });
  });
  return { name: mode, url: `http://127.0.0.1:${port}`, child };
}

module.exports = {
  http,
  startRedis,
  startSandbox,
  startVendor,
  waitVendorReady,
  startReference,
  collectGarbage,
  freePort,
  mintCallerKey,
  encryptionKeys,
  writeVendorConfig,
  stop,
  sleep,
};
