// @ts-check
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
const {
  referenceSettings,
  redisSource,
  reportListening,
  isKnownCaller,
  vendedBody,
  parseStored,
} = require('./lib/reference-answer');

const mode = process.env.BARE_MODE;
const settings = referenceSettings();
const tokenPath = `/tokens/${settings.clientId}`;

/**
 * The floor's Redis connection and the key it reads per request (the ceiling has none).
 * @type {{ redis: import('ioredis').Redis, key: string } | undefined}
 */
let floor;
if (mode === 'floor') {
  const { Redis } = require('ioredis');
  const source = redisSource(settings);
  floor = {
    redis: new Redis(source.url, { commandTimeout: 1000, maxRetriesPerRequest: 1 }),
    key: source.key,
  };
  floor.redis.on('error', () => undefined);
} else if (mode !== 'ceiling') {
  throw new Error('BARE_MODE must be floor or ceiling');
}

/**
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {object} body
 */
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

/**
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 */
async function handle(req, res) {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path !== tokenPath) {
    send(res, 404, { error: 'unknown_client', message: 'No such client.' });
    return;
  }
  if (!isKnownCaller(req.headers.authorization, settings.digests)) {
    send(res, 401, { error: 'unauthorized', message: 'A valid caller key is required.' });
    return;
  }
  let token = settings.memory;
  if (floor) {
    const raw = await floor.redis.get(floor.key);
    token = raw === null ? undefined : parseStored(raw);
  }
  if (token === undefined) {
    send(res, 503, { error: 'upstream_unavailable', message: 'No token.' });
    return;
  }
  send(res, 200, vendedBody(settings, token, Date.now()));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch(() => send(res, 500, { error: 'internal_error' }));
});
server.keepAliveTimeout = 72_000; // as Fastify's default
server.listen(0, '127.0.0.1', () => reportListening(server.address()));

function shutdown() {
  server.close();
  server.closeAllConnections();
  if (floor) floor.redis.disconnect();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
process.on('disconnect', shutdown); // the bench died: do not outlive it
