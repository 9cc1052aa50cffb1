'use strict';
// The comparison servers of the hot-path benchmark: plain node:http, no framework.
//
//   BARE_MODE=floor    the same caller-key check as token-vendor (SHA-256 of the bearer key,
//                      timingSafeEqual against every configured digest) plus one Redis GET
//                      (ioredis) per request, answering the same-shaped JSON.
//   BARE_MODE=ceiling  the same key check, answering the same JSON from memory.
//
// Started by bench/run.js with an IPC channel; it reports its port when listening.
const http = require('node:http');
const { createHash, timingSafeEqual } = require('node:crypto');

const mode = process.env.BARE_MODE;
const digests = process.env.BARE_KEY_SHA256.split(',').map((hex) => Buffer.from(hex, 'hex'));
const clientId = process.env.BARE_CLIENT_ID;
const environment = process.env.BARE_ENVIRONMENT;
const configuredScope = process.env.BARE_SCOPE || undefined;
const tokenPath = `/tokens/${clientId}`;

let redis;
let redisKey;
let memory;
if (mode === 'floor') {
  const { Redis } = require('ioredis');
  redis = new Redis(process.env.BARE_REDIS_URL, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  redisKey = process.env.BARE_REDIS_KEY;
} else if (mode === 'ceiling') {
  memory = JSON.parse(process.env.BARE_TOKEN); // {accessToken, scope, requestedAt, expiresAt}
} else {
  throw new Error('BARE_MODE must be floor or ceiling');
}

/** As libs/auth/src/caller-registry.ts: hash, then compare against every digest. */
function authenticate(req) {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return false;
  const match = /^bearer +(\S+)$/i.exec(header);
  if (!match) return false;
  const digest = createHash('sha256').update(match[1], 'utf8').digest();
  let found = false;
  for (const known of digests) if (timingSafeEqual(digest, known) && !found) found = true;
  return found;
}

/** As libs/tokens/src/vended-token.ts. */
function vended(token, now) {
  const body = {
    access_token: token.accessToken,
    token_type: 'Bearer',
    expires_in: Math.floor((token.expiresAt - now) / 1000),
    expires_at: new Date(token.expiresAt).toISOString(),
    client_id: clientId,
    environment,
  };
  const scope = token.scope ?? configuredScope;
  if (scope !== undefined) body.scope = scope;
  return body;
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(text);
}

/** The floor's value: `<expiresAtMs>|{"a":token,"s":scope,"r":requestedAt}` (plain, not sealed). */
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

async function handle(req, res) {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  if (path !== tokenPath) {
    send(res, 404, { error: 'unknown_client', message: 'No such client.' });
    return;
  }
  if (!authenticate(req)) {
    send(res, 401, { error: 'unauthorized', message: 'A valid caller key is required.' });
    return;
  }
  let token = memory;
  if (redis) {
    const raw = await redis.get(redisKey);
    if (raw === null) {
      send(res, 503, { error: 'upstream_unavailable', message: 'No token.' });
      return;
    }
    token = parseStored(raw);
  }
  send(res, 200, vended(token, Date.now()));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => send(res, 500, { error: 'internal_error' }));
});
server.keepAliveTimeout = 72_000; // as Fastify's default
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));

function shutdown() {
  server.close();
  server.closeAllConnections();
  if (redis) redis.disconnect();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
process.on('disconnect', shutdown); // the bench died: do not outlive it
