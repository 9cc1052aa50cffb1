// @ts-check
'use strict';
// Child processes of the bench: every one is tracked, and every one is killed at the end,
// on error, and on Ctrl-C (SIGTERM first, SIGKILL after a grace period; SIGKILL on exit).
const { spawn, fork } = require('node:child_process');
const { openSync, closeSync, readFileSync, existsSync, mkdtempSync, rmSync } = require('node:fs');
const os = require('node:os');
const { createServer } = require('node:net');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');

/**
 * A child process of the bench: its name and where its stderr goes, for error messages.
 * @typedef {import('node:child_process').ChildProcess & { benchName: string, stderrPath?: string }} BenchChild
 */

/** @type {Set<BenchChild>} */
const children = new Set();

/**
 * A free TCP port on loopback (closed again before returning).
 * @returns {Promise<number>}
 */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = listeningPort(server);
      server.close(() => resolve(port));
    });
  });
}

/**
 * The port a server listening on TCP was given.
 * @param {{ address(): import('node:net').AddressInfo | string | null }} server
 * @returns {number}
 */
function listeningPort(server) {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  return address.port;
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The minimum environment a child needs: nothing of the caller's REDIS_* etc. leaks in.
 * @param {ChildEnv} extra
 * @returns {NodeJS.ProcessEnv}
 */
function baseEnv(extra) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = String(v);
  return env;
}

/** @param {string | undefined} path */
function openOut(path) {
  return openSync(path ?? '/dev/null', 'a');
}

/**
 * Environment variables for a child (numbers are written as strings; undefined are left out).
 * @typedef {Record<string, string | number | undefined>} ChildEnv
 */

/**
 * @typedef {object} StartOptions
 * @property {ChildEnv} [env]
 * @property {string} [stdoutPath]
 * @property {string} [stderrPath]
 * @property {boolean} [ipc]
 * @property {string[]} [execArgv]
 */

/**
 * Starts a child. stdout goes to `stdoutPath` (or /dev/null), stderr to `stderrPath`
 * (or /dev/null). `ipc: true` forks the Node script `command` with an IPC channel (and
 * `execArgv`, Node's own flags).
 * @param {string} name
 * @param {string} command
 * @param {string[]} args
 * @param {StartOptions} [options]
 * @returns {BenchChild}
 */
function start(
  name,
  command,
  args,
  { env = {}, stdoutPath, stderrPath, ipc = false, execArgv = [] } = {},
) {
  const out = openOut(stdoutPath);
  const err = openOut(stderrPath);
  /** @type {import('node:child_process').SpawnOptions} */
  const options = { cwd: ROOT, env: baseEnv(env), stdio: ['ignore', out, err] };
  const spawned = ipc
    ? fork(command, args, { ...options, execArgv, stdio: ['ignore', out, err, 'ipc'] })
    : spawn(command, args, options);
  closeSync(out);
  closeSync(err);
  const child = Object.assign(spawned, { benchName: name, stderrPath });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.on('error', () => undefined);
  return child;
}

/**
 * Throws (with the tail of its stderr) if the child has died.
 * @param {BenchChild} child
 */
function assertAlive(child) {
  if (child.exitCode === null && child.signalCode === null) return;
  let tail = '';
  if (child.stderrPath && existsSync(child.stderrPath)) {
    tail = readFileSync(child.stderrPath, 'utf8').slice(-2000);
  }
  throw new Error(
    `${child.benchName} exited (code ${child.exitCode}, signal ${child.signalCode})${tail ? `:\n${tail}` : ''}`,
  );
}

/**
 * @param {BenchChild} child
 * @returns {Promise<void>}
 */
function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', () => r()));
}

/**
 * SIGTERM, then SIGKILL after `graceMs`.
 * @param {BenchChild} child
 */
async function stop(child, graceMs = 5000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    child.kill('SIGTERM');
  } catch {
    /* already gone */
  }
  const timer = setTimeout(() => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }, graceMs);
  await exited(child);
  clearTimeout(timer);
}

async function stopAll() {
  await Promise.all([...children].map((c) => stop(c)));
}

function killAllNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

process.on('exit', killAllNow);

/** @typedef {false | 0 | '' | null | undefined} Falsy */

/**
 * Polls `probe` (resolves truthy when done) every `intervalMs` until `timeoutMs`; resolves with
 * its first truthy answer.
 * @template T
 * @param {string} what
 * @param {() => Promise<T>} probe
 * @param {{ timeoutMs?: number, intervalMs?: number, alive?: BenchChild[] }} [options]
 * @returns {Promise<Exclude<T, Falsy>>}
 */
async function waitFor(what, probe, { timeoutMs = 60_000, intervalMs = 100, alive = [] } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const child of alive) assertAlive(child);
    try {
      const result = await probe();
      if (result) return /** @type {Exclude<T, Falsy>} */ (result);
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Runs a stand-alone bench script (`node bench/alloc.js`, `node bench/profile.js`): `main(work)`
 * gets a fresh temporary folder; however it ends (success, error, Ctrl-C), every child process
 * it started is stopped and the folder removed (kept with BENCH_KEEP_WORKDIR=1). Exits 0 on
 * success, 1 on an error, 130 on a signal.
 * @param {string} workPrefix
 * @param {(work: string) => Promise<void>} main
 */
function runScript(workPrefix, main) {
  const work = mkdtempSync(join(os.tmpdir(), workPrefix));
  const cleanUp = async () => {
    await stopAll();
    if (!process.env.BENCH_KEEP_WORKDIR) rmSync(work, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
  }
  void main(work)
    .then(
      () => 0,
      (/** @type {Error} */ e) => {
        console.error(e.stack ?? e.message);
        return 1;
      },
    )
    .then(async (code) => {
      await cleanUp();
      process.exit(code);
    });
}

module.exports = {
  runScript,
  ROOT,
  freePort,
  listeningPort,
  sleep,
  start,
  stop,
  stopAll,
  assertAlive,
  waitFor,
  children,
};
