#!/usr/bin/env node
// @ts-check
// `npm start`: the sandbox IdP and the service with config/demo.yaml, then a curl line that works.
// `npm run start:dev`: the same with the service in watch mode (rebuilt and restarted on save).
// SANDBOX_PORT and PORT move the two; the demo configuration follows SANDBOX_PORT.
const { spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { dirname, isAbsolute, join, resolve } = require('node:path');
const { parse, stringify } = require('yaml');

const root = join(__dirname, '..');
const DEMO_CONFIG = join(root, 'config', 'demo.yaml');
/** The port config/demo.yaml names for the sandbox. */
const DEMO_SANDBOX_PORT = '4000';
const DEMO_CALLER_KEY = 'demo-caller-key-not-secret'; // the demo caller's key; fake by design
/** First start in watch mode compiles with webpack first: give it longer. */
const READY_TIMEOUT_MS = { once: 30_000, watch: 180_000 };

/**
 * The parts of config/demo.yaml this script rewrites (the rest is written back as it was).
 * @typedef {object} DemoConfig
 * @property {Record<string, { tokenUrl: string }>} environments
 * @property {{ issuer?: string, jwksUri?: string }[]} [callerIssuers]
 * @property {{ secretFile?: string }[]} clients
 */

/**
 * A process the demo starts: its command, arguments, and environment (added to this one's).
 * @typedef {{ command: string, args: string[], env: Record<string, string> }} Launch
 */

/**
 * A port number from the environment variable `name`, as the string it was given.
 * @param {string} name
 * @param {string} value
 */
function port(name, value) {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new Error(`${name} must be a port number (1-65535), got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * config/demo.yaml with its sandbox URLs on `sandboxPort` and its secret files made absolute
 * (they are relative to config/), written into `dir`; returns its path.
 * @param {string} dir
 * @param {string} sandboxPort
 */
function writeDemoConfig(dir, sandboxPort) {
  /** @type {unknown} */
  const parsed = parse(readFileSync(DEMO_CONFIG, 'utf8'));
  const config = /** @type {DemoConfig} */ (parsed);
  for (const environment of Object.values(config.environments)) {
    const url = new URL(environment.tokenUrl);
    if (url.hostname === '127.0.0.1' && url.port === DEMO_SANDBOX_PORT) url.port = sandboxPort;
    environment.tokenUrl = url.toString();
  }
  // The sandbox is also the demo's workload issuer (callers without keys).
  for (const issuer of config.callerIssuers ?? []) {
    for (const field of /** @type {const} */ (['issuer', 'jwksUri'])) {
      const value = issuer[field];
      if (!value) continue;
      const url = new URL(value);
      if (url.hostname === '127.0.0.1' && url.port === DEMO_SANDBOX_PORT) url.port = sandboxPort;
      issuer[field] = url.toString().replace(/\/$/, '');
    }
  }
  for (const client of config.clients) {
    if (client.secretFile && !isAbsolute(client.secretFile)) {
      client.secretFile = resolve(dirname(DEMO_CONFIG), client.secretFile);
    }
  }
  const path = join(dir, 'demo.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

/**
 * What the demo starts: commands, arguments and environment of the sandbox and the service.
 * @param {NodeJS.ProcessEnv} env
 * @param {string[]} argv
 * @param {() => string} workDir a folder for a rewritten configuration (made when first asked)
 */
function demoPlan(env, argv, workDir) {
  const watch = argv.includes('--watch');
  const sandboxPort = port('SANDBOX_PORT', env.SANDBOX_PORT || DEMO_SANDBOX_PORT);
  const servicePort = port('PORT', env.PORT || '3000');
  let configPath = env.TOKEN_VENDOR_CONFIG;
  if (!configPath) {
    configPath =
      sandboxPort === DEMO_SANDBOX_PORT ? DEMO_CONFIG : writeDemoConfig(workDir(), sandboxPort);
  }
  return {
    watch,
    sandboxPort,
    servicePort,
    configPath,
    sandbox: {
      command: process.execPath,
      args: [join(root, 'dist/apps/identity-sandbox/main.js')],
      env: { SANDBOX_PORT: sandboxPort, SANDBOX_HOST: '127.0.0.1' },
    },
    service: {
      command: process.execPath,
      args: watch
        ? [require.resolve('@nestjs/cli/bin/nest.js'), 'start', 'token-vendor', '--watch']
        : [join(root, 'dist/apps/token-vendor/main.js')],
      // Loopback unless HOST says otherwise: the demo's admin caller key is in the README.
      env: { PORT: servicePort, HOST: env.HOST || '127.0.0.1', TOKEN_VENDOR_CONFIG: configPath },
    },
  };
}

/**
 * Polls `url` until it answers 2xx; throws after `timeoutMs`.
 * @param {string} url
 * @param {string} what
 * @param {number} timeoutMs
 */
async function waitFor(url, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not become ready at ${url}`);
}

/**
 * Resolves once `child` has exited (at once if it already has).
 * @param {import('node:child_process').ChildProcess} child
 * @returns {Promise<void>}
 */
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function main() {
  /** @type {import('node:child_process').ChildProcess[]} */
  const children = [];
  let stopping = false;
  /** @type {string | undefined} */
  let tmp;
  const workDir = () => (tmp ??= mkdtempSync(join(tmpdir(), 'token-vendor-demo-')));

  /** @param {number} code */
  function stop(code) {
    stopping = true;
    // Each child leads its own process group: the watcher's compiled service goes too.
    for (const child of children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const exit = () => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      process.exit(code);
    };
    setTimeout(exit, 2_000).unref();
    void Promise.all(children.map(exited)).then(exit);
  }

  /**
   * @param {string} name
   * @param {Launch} launch
   */
  function start(name, { command, args, env }) {
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    });
    child.on('exit', (code, signal) => {
      if (!stopping) {
        console.error(`${name} exited (${signal ?? code}); stopping the demo.`);
        stop(1);
      }
    });
    children.push(child);
  }

  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));

  (async () => {
    const plan = demoPlan(process.env, process.argv.slice(2), workDir);
    const timeout = plan.watch ? READY_TIMEOUT_MS.watch : READY_TIMEOUT_MS.once;
    start('identity-sandbox', plan.sandbox);
    await waitFor(`http://127.0.0.1:${plan.sandboxPort}/health`, 'the identity sandbox', timeout);
    start('token-vendor', plan.service);
    await waitFor(`http://127.0.0.1:${plan.servicePort}/health/ready`, 'token-vendor', timeout);
    const store = process.env.REDIS_URL ? 'Redis' : 'memory (set REDIS_URL for Redis)';
    const mode = plan.watch ? ' in watch mode (rebuilt and restarted on save)' : '';
    console.log(`
token-vendor is ready on http://127.0.0.1:${plan.servicePort}${mode} (store: ${store}); the sandbox IdP is on :${plan.sandboxPort}.
Get a token:

  curl -s -H 'Authorization: Bearer ${DEMO_CALLER_KEY}' 'http://127.0.0.1:${plan.servicePort}/tokens/demo.client?environment=uat'

Or as a workload without a key (a projected-ServiceAccount-shaped token from the sandbox):

  TOKEN=$(curl -s -X POST -H 'content-type: application/json' -d '{"namespace":"demo","serviceAccount":"demo-app"}' http://127.0.0.1:${plan.sandboxPort}/_sandbox/workload-tokens | node -pe 'JSON.parse(require("fs").readFileSync(0)).token')
  curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:${plan.servicePort}/tokens/demo.client?environment=uat'

API description: http://127.0.0.1:${plan.servicePort}/docs   Stop with Ctrl-C.
`);
  })().catch((/** @type {Error} */ e) => {
    console.error(e.message);
    stop(1);
  });
}

module.exports = { demoPlan, writeDemoConfig };

if (require.main === module) main();
