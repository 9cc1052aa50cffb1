import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import helmet from '@fastify/helmet';
import { Logger } from 'nestjs-pino';
import { TokenVendorModule, type TokenVendorModuleOptions } from './token-vendor.module';

/** Request bodies: only admin calls have one, and they are tiny. */
export const BODY_LIMIT_BYTES = 16 * 1024;
/** Longer than any valid client id (200), so long ids get a 400 rather than a route 404. */
export const MAX_PARAM_LENGTH = 1024;

/** Builds the service (not yet listening): used by main.ts and by the tests alike. */
export async function createTokenVendorApp(
  options: TokenVendorModuleOptions,
): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Our own contract-shaped 503 while draining (see answerWhileClosing).
    return503OnClosing: false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    TokenVendorModule.forRoot(options),
    adapter,
    {
      bufferLogs: true,
    },
  );
  app.useLogger(app.get(Logger));
  await registerSecurityHeaders(app);
  answerWhileClosing(app);
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
        '`Authorization: Bearer <caller key>`; errors are `{"error","message"}` JSON.',
    )
    .setVersion('0.1.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'Caller key' }, 'caller-key')
    .build();
}

/**
 * Security headers for a JSON API (helmet), plus a strict CSP everywhere except the Swagger UI
 * page, which needs its own scripts and styles.
 */
async function registerSecurityHeaders(app: NestFastifyApplication): Promise<void> {
  await app.register(helmet, { contentSecurityPolicy: false, crossOriginEmbedderPolicy: false });
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onSend', (request, reply, payload, done) => {
      if (!request.url.startsWith('/docs')) {
        reply.header('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
      }
      done(null, payload);
    });
}

/**
 * During the drain after SIGTERM: a request that still arrives (on a kept-alive connection)
 * gets a contract-shaped 503 and `Connection: close`, so the caller moves to another replica.
 * Connections that go idle are reaped by main.ts, so keep-alives cannot hold the drain open.
 */
function answerWhileClosing(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onRequest', (_request, reply, done) => {
    if (!closing) return done();
    void reply
      .code(503)
      .header('Connection', 'close')
      .header('Cache-Control', 'no-store')
      .header('Pragma', 'no-cache')
      .header('Retry-After', '1')
      .send({
        error: 'shutting_down',
        message: 'This replica is shutting down; retry and another will answer.',
      });
  });
}
