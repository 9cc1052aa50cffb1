#!/usr/bin/env node
// `npm start`: the sandbox IdP and the service with config/demo.yaml, then a curl line that works.
const { spawn } = require('node:child_process');
const { join } = require('node:path');

const root = join(__dirname, '..');
const SANDBOX_PORT = process.env.SANDBOX_PORT || '4000';
const PORT = process.env.PORT || '3000';
const DEMO_CALLER_KEY = 'demo-caller-key-not-secret'; // the demo caller's key; fake by design

const children = [];
function start(name, script, env) {
  const child = spawn(process.execPath, [join(root, script)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`${name} exited (${signal ?? code}); stopping the demo.`);
      stop(1);
    }
  });
  children.push(child);
  return child;
}

async function waitFor(url, what) {
  const deadline = Date.now() + 30_000;
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

let stopping = false;
function stop(code) {
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 2_000).unref();
  Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on('exit', r)))),
  ).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

(async () => {
  start('identity-sandbox', 'dist/apps/identity-sandbox/main.js', {
    SANDBOX_PORT,
    SANDBOX_HOST: '127.0.0.1',
  });
  await waitFor(`http://127.0.0.1:${SANDBOX_PORT}/health`, 'the identity sandbox');
  start('token-vendor', 'dist/apps/token-vendor/main.js', {
    PORT,
    TOKEN_VENDOR_CONFIG: process.env.TOKEN_VENDOR_CONFIG || join(root, 'config/demo.yaml'),
  });
  await waitFor(`http://127.0.0.1:${PORT}/health/ready`, 'token-vendor');
  const store = process.env.REDIS_URL ? 'Redis' : 'memory (set REDIS_URL for Redis)';
  console.log(`
token-vendor is ready on http://127.0.0.1:${PORT} (store: ${store}); the sandbox IdP is on :${SANDBOX_PORT}.
Get a token:

  curl -s -H 'Authorization: Bearer ${DEMO_CALLER_KEY}' 'http://127.0.0.1:${PORT}/tokens/demo.client?environment=uat'

Or as a workload without a key (a projected-ServiceAccount-shaped token from the sandbox):

  TOKEN=$(curl -s -X POST -H 'content-type: application/json' -d '{"namespace":"demo","serviceAccount":"demo-app"}' http://127.0.0.1:${SANDBOX_PORT}/_sandbox/workload-tokens | node -pe 'JSON.parse(require("fs").readFileSync(0)).token')
  curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:${PORT}/tokens/demo.client?environment=uat'

API description: http://127.0.0.1:${PORT}/docs   Stop with Ctrl-C.
`);
})().catch((e) => {
  console.error(e.message);
  stop(1);
});
