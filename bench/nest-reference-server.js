// @ts-check
'use strict';
// The framework reference of the hot-path benchmark: the smallest NestJS app on Fastify that
// does what the floor does (bench/bare-server.js BARE_MODE=floor): a global guard with the
// same caller-key check, one controller whose handler does one Redis GET (ioredis) and
// answers the same JSON. No logging, metrics, security headers or ACL. It measures what
// "NestJS on Fastify with a Redis GET per request" costs on this machine, the design the
// hot-path target (issue 7: ≥ 1.0× the floor) takes as its yardstick.
//
// Plain JavaScript (the bench is not compiled), so Nest's decorators are applied as functions.
// Started by bench/run.js with an IPC channel; it reports its port when listening.
require('reflect-metadata');
const {
  Controller,
  Get,
  Injectable,
  Module,
  Req,
  ServiceUnavailableException,
  UnauthorizedException,
} = require('@nestjs/common');
const { APP_GUARD, NestFactory } = require('@nestjs/core');
const { FastifyAdapter } = require('@nestjs/platform-fastify');
const { Redis } = require('ioredis');
const {
  referenceSettings,
  redisSource,
  reportListening,
  isKnownCaller,
  vendedBody,
  parseStored,
} = require('./lib/reference-answer');

/** @typedef {import('@nestjs/platform-fastify').NestFastifyApplication} NestFastifyApplication */
/** @typedef {import('fastify').FastifyRequest<{ Params: { clientId: string } }>} TokenRequest */

const settings = referenceSettings();
const source = redisSource(settings);
const redis = new Redis(source.url, { commandTimeout: 1000, maxRetriesPerRequest: 1 });
redis.on('error', () => undefined);

class CallerKeyGuard {
  /** @param {import('@nestjs/common').ExecutionContext} context */
  canActivate(context) {
    const request = /** @type {TokenRequest} */ (context.switchToHttp().getRequest());
    if (isKnownCaller(request.headers.authorization, settings.digests)) return true;
    throw new UnauthorizedException();
  }
}
Injectable()(CallerKeyGuard);

class TokensController {
  /** @param {TokenRequest} request */
  async getToken(request) {
    if (request.params.clientId !== settings.clientId) throw new ServiceUnavailableException();
    const raw = await redis.get(source.key);
    if (raw === null) throw new ServiceUnavailableException();
    return vendedBody(settings, parseStored(raw), Date.now());
  }
}
Req()(TokensController.prototype, 'getToken', 0);
const getToken = Object.getOwnPropertyDescriptor(TokensController.prototype, 'getToken');
if (!getToken) throw new Error('TokensController.prototype has no getToken');
Get(':clientId')(TokensController.prototype, 'getToken', getToken);
Controller('tokens')(TokensController);

class ReferenceModule {}
Module({
  controllers: [TokensController],
  providers: [{ provide: APP_GUARD, useClass: CallerKeyGuard }],
})(ReferenceModule);

/** @type {NestFastifyApplication | undefined} */
let app;
async function main() {
  app = /** @type {NestFastifyApplication} */ (
    await NestFactory.create(ReferenceModule, new FastifyAdapter({ skipMiddie: true }), {
      logger: false,
    })
  );
  // The same Cache-Control / Pragma as the bare servers' answers.
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (_request, reply, done) => {
      void reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      done();
    });
  await app.listen(0, '127.0.0.1');
  reportListening(/** @type {import('node:http').Server} */ (app.getHttpServer()).address());
}

function shutdown() {
  redis.disconnect();
  process.exit(0);
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
process.on('disconnect', shutdown); // the bench died: do not outlive it

main().catch((/** @type {Error} */ error) => {
  process.stderr.write(`nest reference server failed: ${error.stack}\n`);
  process.exit(1);
});
