'use strict';
// What the reference servers of the hot path (bench/bare-server.js, bench/nest-reference-server.js)
// do per request besides serving it: the same caller-key check as token-vendor and the same
// JSON answer, so the servers differ only in what they are built on.
const { hash, timingSafeEqual } = require('node:crypto');

/** The settings every reference server reads from its environment (see hot-servers.js). */
function referenceSettings(env = process.env) {
  return {
    digests: env.BARE_KEY_SHA256.split(',').map((hex) => Buffer.from(hex, 'hex')),
    clientId: env.BARE_CLIENT_ID,
    environment: env.BARE_ENVIRONMENT,
    configuredScope: env.BARE_SCOPE || undefined,
    redisUrl: env.BARE_REDIS_URL,
    redisKey: env.BARE_REDIS_KEY,
    memory: env.BARE_TOKEN ? JSON.parse(env.BARE_TOKEN) : undefined,
  };
}

/** As libs/auth/src/caller-registry.ts: hash, then compare against every digest. */
function isKnownCaller(authorization, digests) {
  if (typeof authorization !== 'string') return false;
  const match = /^bearer +(\S+)$/i.exec(authorization);
  if (!match) return false;
  const digest = hash('sha256', match[1], 'buffer');
  let found = false;
  for (const known of digests) if (timingSafeEqual(digest, known) && !found) found = true;
  return found;
}

/** As libs/tokens/src/vended-token.ts. */
function vendedBody(settings, token, now) {
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

/** The stored value: `<expiresAtMs>|{"a":token,"s":scope,"r":requestedAt}` (plain, not sealed). */
function parseStored(raw) {
  const sep = raw.indexOf('|');
  const fields = JSON.parse(raw.slice(sep + 1));
  return {
    accessToken: fields.a,
    scope: fields.s,
    requestedAt: fields.r,
    expiresAt: Number(raw.slice(0, sep)),
  };
}

module.exports = { referenceSettings, isKnownCaller, vendedBody, parseStored };
