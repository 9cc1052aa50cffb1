// @ts-check
'use strict';
// What the reference servers of the hot path (bench/bare-server.js, bench/nest-reference-server.js)
// do per request besides serving it: the same caller-key check as token-vendor and the same
// JSON answer, so the servers differ only in what they are built on.
const { hash, timingSafeEqual } = require('node:crypto');

/**
 * The answer of `GET /tokens/:clientId` (README "Getting a token").
 * @typedef {object} VendedTokenBody
 * @property {string} access_token
 * @property {'Bearer'} token_type
 * @property {number} expires_in
 * @property {string} expires_at
 * @property {string} client_id
 * @property {string} environment
 * @property {string} [scope]
 */

/**
 * A token as the reference servers hold it.
 * @typedef {{ accessToken: string, scope?: string, requestedAt: number, expiresAt: number }} HeldToken
 */

/**
 * @typedef {object} ReferenceSettings
 * @property {Buffer[]} digests
 * @property {string} clientId
 * @property {string} environment
 * @property {string | undefined} configuredScope
 * @property {RedisSource | undefined} redis set when BARE_REDIS_URL is
 * @property {HeldToken | undefined} memory set when BARE_TOKEN is
 */

/**
 * The Redis value the floor and the NestJS reference read per request.
 * @typedef {{ url: string, key: string }} RedisSource
 */

/**
 * An environment variable the reference servers cannot do without.
 * @param {NodeJS.ProcessEnv} env
 * @param {string} name
 * @returns {string}
 */
function required(env, name) {
  const value = env[name];
  if (value === undefined) throw new Error(`${name} is not set (bench/lib/hot-servers.js sets it)`);
  return value;
}

/**
 * The ceiling's token, as hot-servers.js writes it into BARE_TOKEN.
 * @param {string} json
 * @returns {HeldToken}
 */
function heldToken(json) {
  /** @type {unknown} */
  const parsed = JSON.parse(json);
  return /** @type {HeldToken} */ (parsed);
}

/**
 * The settings every reference server reads from its environment (see hot-servers.js).
 * @returns {ReferenceSettings}
 */
function referenceSettings(env = process.env) {
  return {
    digests: required(env, 'BARE_KEY_SHA256')
      .split(',')
      .map((hex) => Buffer.from(hex, 'hex')),
    clientId: required(env, 'BARE_CLIENT_ID'),
    environment: required(env, 'BARE_ENVIRONMENT'),
    configuredScope: env.BARE_SCOPE || undefined,
    redis: env.BARE_REDIS_URL
      ? { url: env.BARE_REDIS_URL, key: required(env, 'BARE_REDIS_KEY') }
      : undefined,
    memory: env.BARE_TOKEN ? heldToken(env.BARE_TOKEN) : undefined,
  };
}

/**
 * The Redis value a server reading Redis needs (its settings say where).
 * @param {ReferenceSettings} settings
 * @returns {RedisSource}
 */
function redisSource(settings) {
  if (!settings.redis)
    throw new Error('BARE_REDIS_URL is not set (bench/lib/hot-servers.js sets it)');
  return settings.redis;
}

/**
 * Tells the bench (the parent, over IPC) the port this server listens on.
 * @param {import('node:net').AddressInfo | string | null} address the server's address()
 */
function reportListening(address) {
  if (address === null || typeof address === 'string') throw new Error('not listening on TCP');
  if (!process.send) throw new Error('no IPC channel (bench/lib/services.js forks this server)');
  process.send({ port: address.port });
}

/**
 * As libs/auth/src/caller-registry.ts: hash, then compare against every digest.
 * @param {string | undefined} authorization
 * @param {Buffer[]} digests
 */
function isKnownCaller(authorization, digests) {
  if (typeof authorization !== 'string') return false;
  const match = /^bearer +(\S+)$/i.exec(authorization);
  if (!match) return false;
  const digest = hash('sha256', match[1], 'buffer');
  let found = false;
  for (const known of digests) if (timingSafeEqual(digest, known) && !found) found = true;
  return found;
}

/**
 * As libs/tokens/src/vended-token.ts.
 * @param {ReferenceSettings} settings
 * @param {HeldToken} token
 * @param {number} now
 * @returns {VendedTokenBody}
 */
function vendedBody(settings, token, now) {
  /** @type {VendedTokenBody} */
  const body = {
    access_token: token.accessToken,
    token_type: 'Bearer',
    expires_in: Math.floor((token.expiresAt - now) / 1000),
    expires_at: new Date(token.expiresAt).toISOString(),
    client_id: settings.clientId,
    environment: settings.environment,
  };
  const scope = token.scope ?? settings.configuredScope;
  if (scope !== undefined) body.scope = scope;
  return body;
}

/**
 * The stored value: `<expiresAtMs>|{"a":token,"s":scope,"r":requestedAt}` (plain, not sealed).
 * @param {string} raw
 * @returns {HeldToken}
 */
function parseStored(raw) {
  const sep = raw.indexOf('|');
  /** @type {unknown} */
  const parsed = JSON.parse(raw.slice(sep + 1));
  const fields = /** @type {{ a: string, s?: string, r: number }} */ (parsed);
  return {
    accessToken: fields.a,
    scope: fields.s,
    requestedAt: fields.r,
    expiresAt: Number(raw.slice(0, sep)),
  };
}

module.exports = {
  referenceSettings,
  redisSource,
  reportListening,
  isKnownCaller,
  vendedBody,
  parseStored,
};
