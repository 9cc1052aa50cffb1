import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  accessLogHook,
  isTokenRequestRoute,
  MetricsServer,
  MetricsService,
  PinoNestLogger,
  RequestTracing,
  requestIdOf,
  requestMetricsHook,
  ROOT_LOGGER,
  tokenRequestDurationHook,
} from '@app/observability';
import { AuditLog } from '@app/audit';
import { errorBody } from '@app/errors';
import { authenticateBeforeBodyHook, takesBody } from './authenticate-before-body';
import { addRouteHook } from './route-hooks';
import { isSwaggerUiPath, securityHeaderSets, type SecurityHeaderSets } from './security-headers';
import { TokenVendorModule, type TokenVendorModuleOptions } from './token-vendor.module';

/** Request bodies: only the admin POSTs and rejection reports have one, and they are tiny. */
export const BODY_LIMIT_BYTES = 16 * 1024;
/**
 * Far longer than any valid client id (200), so long ids reach our validation and get the
 * documented 400 (README "API") instead of the router's 414; Node's 16 KiB header limit bounds
 * the URL anyway.
 */
export const MAX_PARAM_LENGTH = 16 * 1024;

/**
 * Limits on how long a caller may take to send a request (README "HTTP server"), so slow or
 * stalled senders cannot hold connections and memory: the headers within `headersTimeoutMs`
 * of the request's start, the whole request (headers and body) within `requestTimeoutMs`.
 * Node checks them every `checkIntervalMs` (its default, 30 s, would let a stalled sender stay
 * up to 30 s longer). They do not bound the answer: a token fetch may take `timeoutMs` × 3.
 */
export interface HttpServerTimeouts {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  checkIntervalMs: number;
}
export const HTTP_SERVER_TIMEOUTS: Readonly<HttpServerTimeouts> = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
};

export interface TokenVendorAppOptions extends TokenVendorModuleOptions {
  /** Tests shorten the HTTP server's timeouts; production uses HTTP_SERVER_TIMEOUTS. */
  httpTimeouts?: Partial<HttpServerTimeouts>;
}

/** Builds the service (not yet listening): used by main.ts and by the tests alike. */
export async function createTokenVendorApp(
  options: TokenVendorAppOptions,
): Promise<NestFastifyApplication> {
  const headers = securityHeaderSets();
  const timeouts = { ...HTTP_SERVER_TIMEOUTS, ...options.httpTimeouts };
  const { trustedProxies } = options.configuration.runtime;
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    http: {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      connectionsCheckingInterval: timeouts.checkIntervalMs,
    },
    // Fastify sets the server's requestTimeout itself after creating it (0, off, by default).
    requestTimeout: timeouts.requestTimeoutMs,
    // The client address (failed-auth limiter, access and audit lines) is the socket's peer,
    // or, behind a trusted proxy, the last address in X-Forwarded-For it did not add itself.
    trustProxy: trustedProxies.length > 0 ? [...trustedProxies] : false,
    genReqId: requestIdOf,
    // No Nest middleware is used (logging is a pino root logger plus an onResponse hook), so
    // @fastify/middie's per-request hook would only find nothing to run.
    skipMiddie: true,
    // Our own 503 in the error JSON while draining (README "Shutdown"; see registerRequestHooks).
    return503OnClosing: false,
    // Errors Fastify raises before routing (a bad percent-encoding in the URL): the error JSON
    // of README "API", never Fastify's default body, which echoes the URL and its query string.
    frameworkErrors: (_error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      void reply
        .code(400)
        .headers(headers.api)
        .header('X-Request-Id', request.id)
        .send(errorBody('invalid_request', 'The request is malformed.'));
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
  const fastify = app.getHttpAdapter().getInstance();
  const metrics = app.get(MetricsService);
  fastify.addHook('onResponse', accessLogHook(logger));
  fastify.addHook('onResponse', requestMetricsHook(metrics));
  registerRequestHooks(app, headers);
  const tracing = app.get(RequestTracing);
  fastify.addHook('onRequest', tracing.onRequest);
  if (tracing.enabled) fastify.addHook('onResponse', tracing.onResponse);
  // Hooks that concern some routes only are attached to those routes as Nest registers them
  // (at init, after this), so the cache-hit GET /tokens runs no hook that has nothing to do.
  const authenticateBeforeBody = authenticateBeforeBodyHook(app);
  const tokenRequestDuration = tokenRequestDurationHook(metrics);
  fastify.addHook('onRoute', (route) => {
    if (takesBody(route.method)) addRouteHook(route, 'preParsing', authenticateBeforeBody);
    if (isTokenRequestRoute(route)) addRouteHook(route, 'onResponse', tokenRequestDuration);
  });
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, openApiConfig()), {
    jsonDocumentUrl: 'docs-json',
  });
  return app;
}

/**
 * Starts serving: the API on `port`, Prometheus `/metrics` on `metricsPort` (its own listener,
 * never the API port). main.ts and the test harness start the service this one way.
 */
export async function listenTokenVendor(
  app: NestFastifyApplication,
  at: { port: number; metricsPort: number; host: string },
): Promise<{ api: AddressInfo; metrics: AddressInfo }> {
  await app.listen({ port: at.port, host: at.host });
  try {
    const metrics = await app.get(MetricsServer).listen(at.metricsPort, at.host);
    return { api: app.getHttpServer().address() as AddressInfo, metrics };
  } catch (e) {
    await app.close();
    throw e;
  }
}

function openApiConfig(): ReturnType<DocumentBuilder['build']> {
  return new DocumentBuilder()
    .setTitle('token-vendor')
    .setDescription(
      'Centralized OAuth 2.0 client-credentials token vending. Callers authenticate with ' +
        '`Authorization: Bearer <caller key>`, or with a workload JWT (e.g. a projected ' +
        'Kubernetes ServiceAccount token) from a configured caller issuer; errors are ' +
        '`{"error","message"}` JSON. Every ' +
        "answer carries `X-Request-Id` (the caller's own when it is 1-64 of `[A-Za-z0-9_.-]`, " +
        'else a new UUID); a W3C `traceparent` is passed on to the identity provider. ' +
        'While a replica drains after SIGTERM, a request still arriving on an open connection ' +
        'gets 503 `shutting_down` with `Connection: close` and `Retry-After: 1`: retry, and ' +
        'another replica answers. ' +
        'Prometheus metrics are served on a separate port (`METRICS_PORT`), not by this API.',
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

/** `/tokens/...`: the paths whose requests are audited (README "Logs and metrics"). */
const TOKEN_PATH = /^\/tokens(\/|\?|$)/;

/**
 * The one `onRequest` hook of ours, on every request that reaches routing (404s and errors
 * included):
 * - security headers: one prepared set per answer, picked by path (see security-headers.ts),
 *   and the request id (the caller's sane `X-Request-Id`, else a fresh one) as `X-Request-Id`;
 * - during the drain after SIGTERM, a request that still arrives (on a kept-alive connection)
 *   gets a 503 in the error JSON and `Connection: close` (README "Shutdown"), so the caller
 *   moves to another replica. It is turned away before the guard, so a token request's audit
 *   line (`outcome: shutting_down`) is written here: it has no access line.
 *   Connections that go idle are reaped by main.ts, so keep-alives cannot hold the drain open.
 */
function registerRequestHooks(app: NestFastifyApplication, headers: SecurityHeaderSets): void {
  const fastify = app.getHttpAdapter().getInstance();
  const audit = app.get(AuditLog);
  let closing = false;
  fastify.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply
      .headers(isSwaggerUiPath(request.url) ? headers.swaggerUi : headers.api)
      .header('X-Request-Id', request.id);
    if (!closing) return done();
    // Token requests are audited, and have no access line; other paths (a probe, the admin
    // API) get their access line, and a probe in the audit log would only be noise.
    if (TOKEN_PATH.test(request.url)) {
      audit.write({
        msg: 'request refused',
        requestId: request.id,
        caller: null,
        path: request.url.split('?')[0],
        source: request.ip,
        outcome: 'shutting_down',
      });
    }
    void reply
      .code(503)
      .header('Connection', 'close')
      .header('Retry-After', '1')
      .send(
        errorBody('shutting_down', 'This replica is shutting down; retry and another will answer.'),
      );
  });
}
