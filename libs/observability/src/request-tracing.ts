import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ConfigService } from '@app/config';
import type { AttemptTrace, UpstreamAttempt, UpstreamAttemptStart } from '@app/upstream';
import { buildVersion } from './build-info';

/** W3C Trace Context `traceparent`, version 00 (a later version is read by its first fields). */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** W3C: `tracestate` may be dropped when longer than this; a caller's text, so it is bounded. */
const MAX_TRACESTATE_LENGTH = 512;

/** What one request carries to the IdP calls made on its behalf. */
interface RequestTrace {
  /** Tracing off: the caller's headers, passed on unchanged (a W3C pass-through). */
  incoming?: Record<string, string>;
  /** Tracing on: the request's server span's context, the parent of IdP attempts. */
  context?: Context;
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: () => void) => void;
const SPAN = Symbol('token-vendor.span');
type TracedRequest = FastifyRequest & { [SPAN]?: Span };

/**
 * W3C trace context for requests and the IdP calls they cause (README "Logs and metrics").
 *
 * Off (the default, no `OTEL_EXPORTER_OTLP_ENDPOINT`): a valid incoming `traceparent` (and
 * `tracestate`) is passed on unchanged to IdP calls; requests without one cost one header
 * lookup, nothing else.
 * On: every request gets a server span (a child of the caller's `traceparent` when there is
 * one), every IdP attempt a client span under it whose id goes out in `traceparent`, and the
 * spans are exported over OTLP/HTTP in batches. No OpenTelemetry globals are registered (no
 * auto-instrumentation, no global tracer): the spans are exactly the ones made here.
 */
@Injectable()
export class RequestTracing implements OnApplicationShutdown {
  private readonly requests = new AsyncLocalStorage<RequestTrace>();
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly provider?: TracerProvider;
  private readonly tracer?: Tracer;

  constructor(config: ConfigService) {
    const url = config.runtime.otlpTracesEndpoint;
    if (!url) return;
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({
        'service.name': 'token-vendor',
        'service.version': buildVersion(),
      }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) })],
    });
    this.tracer = this.provider.getTracer('token-vendor', buildVersion());
  }

  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  /** Fastify `onRequest`: runs the rest of the request inside its trace context. */
  readonly onRequest: Hook = (request, _reply, done) => {
    const tracer = this.tracer;
    if (!tracer) {
      const incoming = passThroughHeaders(request.headers);
      return incoming ? this.requests.run({ incoming }, done) : done();
    }
    const parent = this.propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
    const route = request.routeOptions.url;
    const span = tracer.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          ...(route ? { 'http.route': route } : {}),
          'token_vendor.request_id': request.id,
        },
      },
      parent,
    );
    (request as TracedRequest)[SPAN] = span;
    this.requests.run({ context: trace.setSpan(parent, span) }, done);
  };

  /** Fastify `onResponse`: ends the request's span with its status. */
  readonly onResponse: Hook = (request, reply, done) => {
    const span = (request as TracedRequest)[SPAN];
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  };

  /** The headers for one IdP attempt, and its span when tracing is on. */
  beginAttempt(where: UpstreamAttemptStart): AttemptTrace | undefined {
    const current = this.requests.getStore();
    const tracer = this.tracer;
    if (!tracer) return current?.incoming ? { headers: current.incoming, end: noop } : undefined;
    const span = tracer.startSpan(
      'oauth2 token request',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'POST',
          'token_vendor.environment': where.environment,
          'token_vendor.client_id': where.clientId,
          'token_vendor.attempt': where.attempt,
        },
      },
      current?.context ?? ROOT_CONTEXT,
    );
    const headers: Record<string, string> = {};
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    return {
      headers,
      end(event: UpstreamAttempt) {
        if (event.status !== undefined)
          span.setAttribute('http.response.status_code', event.status);
        span.setAttribute('token_vendor.outcome', event.outcome);
        if (event.outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  /** Exports what is still buffered (SIGTERM, app.close()). */
  async onApplicationShutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}

function noop(): void {}

/**
 * The caller's W3C headers when its `traceparent` is valid (version `ff`, an all-zero trace or
 * parent id are invalid), bounded `tracestate` with it; undefined otherwise.
 */
export function passThroughHeaders(
  headers: FastifyRequest['headers'],
): Record<string, string> | undefined {
  const traceparent = headers.traceparent;
  if (typeof traceparent !== 'string') return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  const [, version, traceId, parentId, , rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  const tracestate = headers.tracestate;
  return typeof tracestate === 'string' &&
    tracestate.length <= MAX_TRACESTATE_LENGTH &&
    /^[\x20-\x7e]*$/.test(tracestate)
    ? { traceparent, tracestate }
    : { traceparent };
}
