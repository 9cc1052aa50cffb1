#!/usr/bin/env node
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

function port(name, value) {
  if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
    throw new Error(`${name} must be a port number (1-65535), got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * config/demo.yaml with its sandbox URLs on `sandboxPort` and its secret files made absolute
 * (they are relative to config/), written into `dir`; returns its path.
 */
function writeDemoConfig(dir, sandboxPort) {
  const config = parse(readFileSync(DEMO_CONFIG, 'utf8'));
  for (const environment of Object.values(config.environments)) {
    const url = new URL(environment.tokenUrl);
    if (url.hostname === '127.0.0.1' && url.port === DEMO_SANDBOX_PORT) url.port = sandboxPort;
    environment.tokenUrl = url.toString();
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

/** What the demo starts: commands, arguments and environment of the sandbox and the service. */
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
      env: { PORT: servicePort, TOKEN_VENDOR_CONFIG: configPath },
    },
  };
}

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

function main() {
  const children = [];
  let stopping = false;
  let tmp;
  const workDir = () => (tmp ??= mkdtempSync(join(tmpdir(), 'token-vendor-demo-')));

  function stop(code) {
    stopping = true;
    // Each child leads its own process group: the watcher's compiled service goes too.
    for (const child of children) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    const exit = () => {
      if (tmp) rmSync(tmp, { recursive: true, force: true });
      process.exit(code);
    };
    setTimeout(exit, 2_000).unref();
    Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))),
    ).then(exit);
  }

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

API description: http://127.0.0.1:${plan.servicePort}/docs   Stop with Ctrl-C.
`);
  })().catch((e) => {
    console.error(e.message);
    stop(1);
  });
}

module.exports = { demoPlan, writeDemoConfig };

if (require.main === module) main();
