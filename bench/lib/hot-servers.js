// @ts-check
'use strict';
// The servers of the hot path, started one way for `npm run bench` (phases/hot-path.js),
// `node bench/profile.js` and `node bench/alloc.js`: a sandbox IdP knowing one client, a
// token-vendor replica that holds that client's token (every request is then a cache hit),
// and optionally the reference servers answering the same JSON: two bare node:http servers
// (floor and ceiling) and the smallest NestJS-on-Fastify app doing the floor's work (nest).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { Redis } = require('ioredis');
const svc = require('./services');
const { waitFor } = require('./procs');

const CLIENT_ID = 'bench.client';
const ENVIRONMENT = 'bench';
const SCOPE = 'read';
const TOKEN_PATH = `/tokens/${CLIENT_ID}`;

/** @typedef {import('./procs').BenchChild} BenchChild */
/** @typedef {import('./services').ReferenceMode} ReferenceMode */
/** @typedef {import('./services').RunningReference} RunningReference */
/** @typedef {import('./reference-answer').VendedTokenBody} VendedTokenBody */

/**
 * @typedef {object} HotServerOptions
 * @property {string} name
 * @property {Partial<import('./services').VendorOptions>} [vendor]
 * @property {boolean} [references]
 * @property {(mode: ReferenceMode) => { execArgv?: string[], stdoutPath?: string }} [referenceOptions]
 */

/**
 * @typedef {object} HotServers
 * @property {{ authorization: string }} auth the caller key's header
 * @property {{ authorization: string }} jwtAuth the workload JWT's header
 * @property {import('./services').RunningSandbox} sandbox
 * @property {import('./services').RunningVendor} vendor
 */

/** @typedef {Record<ReferenceMode, RunningReference>} ReferenceServers */

/**
 * @overload
 * @param {string} work
 * @param {import('./services').RunningRedis} redis
 * @param {BenchChild[]} started
 * @param {HotServerOptions & { references: true }} options
 * @returns {Promise<HotServers & ReferenceServers>}
 */
/**
 * @overload
 * @param {string} work
 * @param {import('./services').RunningRedis} redis
 * @param {BenchChild[]} started
 * @param {HotServerOptions} options
 * @returns {Promise<HotServers>}
 */
/**
 * `started` collects every child as it starts, so the caller can stop them even when a later
 * start fails. Options: `name` (file and key prefix), `vendor` (startVendor options: nodeArgs,
 * stdoutPath, env), `references` (also start the reference servers: floor, ceiling, nest),
 * `referenceOptions` (startReference options: execArgv, stdoutPath, as a function of the mode).
 * @param {string} work
 * @param {import('./services').RunningRedis} redis
 * @param {BenchChild[]} started
 * @param {HotServerOptions} options
 * @returns {Promise<HotServers & Partial<ReferenceServers>>}
 */
async function startHotServers(work, redis, started, options) {
  const {
    name,
    vendor: vendorOptions = {},
    references = false,
    referenceOptions = () => ({}),
  } = options;
  const caller = svc.mintCallerKey();
  const auth = { authorization: `Bearer ${caller.key}` };
  const secret = randomBytes(24).toString('base64url');
  const secretFile = join(work, `${name}.secret`);
  writeFileSync(secretFile, `${secret}\n`);

  const sandbox = await svc.startSandbox(work, `${name}-sandbox`, [
    { clientId: CLIENT_ID, secret, scopes: [SCOPE] },
  ]);
  started.push(sandbox.child);
  const configPath = join(work, `${name}.yaml`);
  const workload = { issuer: `${sandbox.url}/workload-issuer`, subject: 'bench-workload' };
  svc.writeVendorConfig(configPath, {
    tokenUrl: sandbox.tokenUrl,
    environment: ENVIRONMENT,
    clients: [{ clientId: CLIENT_ID, secretFile, scope: SCOPE }],
    callerSha256: caller.sha256,
    workloadIssuer: workload,
  });
  // The same caller rights with a workload JWT (an hour's token, verified once, then cached).
  const minted = await svc.http(`${sandbox.url}/_sandbox/workload-tokens`, {
    method: 'POST',
    body: { subject: workload.subject },
  });
  if (minted.status !== 200)
    throw new Error(`the sandbox minted no workload token: ${minted.text}`);
  const jwtAuth = {
    authorization: `Bearer ${/** @type {{ token: string }} */ (minted.json).token}`,
  };
  const vendor = await svc.startVendor(work, `${name}-vendor`, {
    configPath,
    redisUrl: redis.url,
    keyPrefix: `bench-${name}:`,
    encryptionKeys: svc.encryptionKeys(),
    ...vendorOptions,
  });
  started.push(vendor.child);

  // The start-up warm-up fetches the token; from then on every request is a cache hit.
  const first = await waitFor(
    'the vendor to hold the token',
    async () => {
      const r = await svc.http(`${vendor.url}${TOKEN_PATH}`, { headers: auth });
      return r.status === 200 && /** @type {VendedTokenBody} */ (r.json);
    },
    { timeoutMs: 30_000, alive: [vendor.child] },
  );
  /** @type {HotServers & Partial<ReferenceServers>} */
  const servers = { auth, jwtAuth, sandbox, vendor };
  if (!references) return servers;

  const expiresAt = Date.parse(first.expires_at);
  const token = {
    accessToken: first.access_token,
    scope: first.scope,
    requestedAt: Date.now(),
    expiresAt,
  };
  // The floor reads a plain value of the same layout as the vendor's (`<ms>|{json}`).
  const floorKey = `bench-${name}-floor:{${ENVIRONMENT}/${CLIENT_ID}}:token`;
  const client = new Redis(redis.url);
  await client.set(
    floorKey,
    `${expiresAt}|${JSON.stringify({ a: token.accessToken, s: token.scope, r: token.requestedAt })}`,
    'PX',
    expiresAt - Date.now(),
  );
  client.disconnect();

  const sharedEnv = {
    BARE_KEY_SHA256: caller.sha256,
    BARE_CLIENT_ID: CLIENT_ID,
    BARE_ENVIRONMENT: ENVIRONMENT,
    BARE_SCOPE: SCOPE,
  };
  const fromRedis = { BARE_REDIS_URL: redis.url, BARE_REDIS_KEY: floorKey };
  /** @type {Record<ReferenceMode, Record<string, string>>} */
  const envByMode = {
    floor: fromRedis,
    ceiling: { BARE_TOKEN: JSON.stringify(token) },
    // The NestJS reference reads the same Redis value as the floor.
    nest: fromRedis,
  };
  // Object.entries widens the keys to string; they are envByMode's, the reference modes.
  for (const [mode, env] of /** @type {[ReferenceMode, Record<string, string>][]} */ (
    Object.entries(envByMode)
  )) {
    const options = referenceOptions(mode);
    servers[mode] = await svc.startReference(work, mode, { ...sharedEnv, ...env }, options);
    started.push(servers[mode].child);
  }
  return servers;
}

module.exports = { startHotServers, CLIENT_ID, ENVIRONMENT, SCOPE, TOKEN_PATH };
