import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { accessLogHook, PinoNestLogger, requestIdOf, ROOT_LOGGER } from '@app/observability';
import { isSwaggerUiPath, securityHeaderSets, type SecurityHeaderSets } from './security-headers';
import { TokenVendorModule, type TokenVendorModuleOptions } from './token-vendor.module';

/** Request bodies: only admin calls have one, and they are tiny. */
export const BODY_LIMIT_BYTES = 16 * 1024;
/**
 * Far longer than any valid client id (200), so long ids reach our validation and get the
 * contract's 400 instead of the router's 414; Node's 16 KiB header limit bounds the URL anyway.
 */
export const MAX_PARAM_LENGTH = 16 * 1024;

/** Builds the service (not yet listening): used by main.ts and by the tests alike. */
export async function createTokenVendorApp(
  options: TokenVendorModuleOptions,
): Promise<NestFastifyApplication> {
  const headers = securityHeaderSets();
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    genReqId: requestIdOf,
    // No Nest middleware is used (logging is a pino root logger plus an onResponse hook), so
    // @fastify/middie's per-request hook would only find nothing to run.
    skipMiddie: true,
    // Our own contract-shaped 503 while draining (see registerRequestHooks).
    return503OnClosing: false,
    // Errors Fastify raises before routing (a bad percent-encoding in the URL): the contract's
    // JSON, never Fastify's default body, which echoes the URL and its query string.
    frameworkErrors: (_error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      void reply
        .code(400)
        .headers(headers.api)
        .send({ error: 'invalid_request', message: 'The request is malformed.' });
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    TokenVendorModule.forRoot(options),
    adapter,
    {
      bufferLogs: true,
    },
  );
  const logger = app.get<Logger>(ROOT_LOGGER);
  app.useLogger(new PinoNestLogger(logger));
  app.getHttpAdapter().getInstance().addHook('onResponse', accessLogHook(logger));
  registerRequestHooks(app, headers);
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApiConfig()), {
    jsonDocumentUrl: 'docs-json',
  });
  return app;
}

function openApiConfig(): ReturnType<DocumentBuilder['build']> {
  return new DocumentBuilder()
    .setTitle('token-vendor')
    .setDescription(
      'Centralized OAuth 2.0 client-credentials token vending. Callers authenticate with ' +
        '`Authorization: Bearer <caller key>`, or with a workload JWT (e.g. a projected ' +
        'Kubernetes ServiceAccount token) from a configured caller issuer; errors are ' +
        '`{"error","message"}` JSON.',
    )
    .setVersion('0.1.0')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description:
          'Caller key, or a workload JWT (RS256/PS256/ES256) from one of the callerIssuers',
      },
      'caller-key',
    )
    .build();
}

/**
 * The one `onRequest` hook of ours, on every request that reaches routing (404s and errors
 * included):
 * - security headers: one prepared set per answer, picked by path (see security-headers.ts);
 * - during the drain after SIGTERM, a request that still arrives (on a kept-alive connection)
 *   gets a contract-shaped 503 and `Connection: close`, so the caller moves to another replica.
 *   Connections that go idle are reaped by main.ts, so keep-alives cannot hold the drain open.
 */
function registerRequestHooks(app: NestFastifyApplication, headers: SecurityHeaderSets): void {
  const fastify = app.getHttpAdapter().getInstance();
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.headers(isSwaggerUiPath(request.url) ? headers.swaggerUi : headers.api);
    if (!closing) return done();
    void reply.code(503).header('Connection', 'close').header('Retry-After', '1').send({
      error: 'shutting_down',
      message: 'This replica is shutting down; retry and another will answer.',
    });
  });
}
