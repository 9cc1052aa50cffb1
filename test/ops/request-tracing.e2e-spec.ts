import { randomBytes } from 'node:crypto';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { startRecordingProxy, type RecordingProxy } from '../hardening/harness';
import { startOtlpReceiver, type OtlpReceiver } from './otlp-receiver';
import { httpRequest, type InProcessService, startService } from '../support';

/**
 * Request ids and W3C trace context (README "Logs and metrics"): every answer carries
 * `X-Request-Id` (the caller's sane one, else a fresh UUID, the same id as in the audit line);
 * a caller's `traceparent` reaches the IdP calls made for it: unchanged while tracing is off,
 * as a child span of the same trace when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and then the
 * spans reach an OTLP/HTTP receiver. The IdP requests are read off a recording proxy in front
 * of the real sandbox.
 */
const SECRET = 'tracing-secret-0001';
const KEY = 'tracing-caller-key-0001-aaaaaaaaaaaaaaaa';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const CLIENTS = ['a', 'b', 'c', 'd', 'e'].map((x) => `trace-${x}.client`);

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const traceparentOf = (traceId: string, parentId: string): string => `00-${traceId}-${parentId}-01`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

async function startBehind(
  proxy: RecordingProxy,
  env: Record<string, string> = {},
): Promise<InProcessService> {
  return startService({
    scheduler: false,
    environments: { uat: { tokenUrl: proxy.tokenUrl, timeoutMs: 2000 } },
    clients: CLIENTS.map((clientId) => ({ clientId, environment: 'uat', secret: SECRET })),
    callers: [{ name: 'tracer', keys: [KEY], clients: ['*'], admin: true }],
    env,
  });
}

describe('request ids and trace context, tracing off (e2e)', () => {
  let idp: RunningSandbox;
  let proxy: RecordingProxy;
  let svc: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: CLIENTS.map((clientId) => ({ clientId, secret: SECRET })),
    });
    proxy = await startRecordingProxy(idp.tokenUrl);
    svc = await startBehind(proxy);
  });

  afterAll(async () => {
    await svc?.close();
    await proxy?.close();
    await idp?.close();
  });

  it('answers every request with X-Request-Id: the caller’s sane id, echoed and audited', async () => {
    const res = await httpRequest(`${svc.url}/tokens/${CLIENTS[0]}`, {
      key: KEY,
      headers: { 'x-request-id': 'caller-req.42' },
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('caller-req.42');
    const audit = svc.logs.audit().filter((l) => l.requestId === 'caller-req.42');
    expect(audit.map((l) => l.outcome)).toEqual(['served']);
  });

  it.each([
    ['a token request without an id', `/tokens/${CLIENTS[0]}`, KEY, {}, 200],
    ['a refused request', `/tokens/${CLIENTS[0]}`, 'not-a-key', {}, 401],
    ['an unknown path', '/no-such-path', KEY, {}, 404],
    ['a health probe', '/health/live', undefined, {}, 200],
    ['an id with spaces', `/tokens/${CLIENTS[0]}`, KEY, { 'x-request-id': 'a b' }, 200],
    [
      'an id over 64 characters',
      `/tokens/${CLIENTS[0]}`,
      KEY,
      { 'x-request-id': 'r'.repeat(65) },
      200,
    ],
  ])('%s gets a fresh UUID', async (_case, path, key, headers, status) => {
    const res = await httpRequest(svc.url + path, { key, headers });
    expect(res.status).toBe(status);
    expect(res.headers['x-request-id']).toMatch(UUID);
  });

  it('passes a valid traceparent (and tracestate) on to the IdP unchanged', async () => {
    const traceparent = traceparentOf(hex(16), hex(8));
    const before = proxy.requestHeaders.length;
    const res = await httpRequest(`${svc.url}/tokens/${CLIENTS[1]}`, {
      key: KEY,
      headers: { traceparent, tracestate: 'vendor=abc' },
    });
    expect(res.status).toBe(200);
    const sent = proxy.requestHeaders.slice(before);
    expect(sent.map((h) => [h.traceparent, h.tracestate])).toEqual([[traceparent, 'vendor=abc']]);
  });

  it.each([
    ['no traceparent', undefined],
    ['an all-zero trace id', traceparentOf('0'.repeat(32), hex(8))],
    ['an all-zero parent id', traceparentOf(hex(16), '0'.repeat(16))],
    ['version ff', `ff-${hex(16)}-${hex(8)}-01`],
    ['upper-case hex', traceparentOf(hex(16).toUpperCase(), hex(8))],
    ['garbage', 'not-a-traceparent'],
  ])('sends no traceparent to the IdP for %s', async (_case, traceparent) => {
    const client = CLIENTS[2];
    const before = proxy.requestHeaders.length;
    const res = await httpRequest(`${svc.url}/admin/clients/${client}/refresh`, {
      key: KEY,
      method: 'POST',
      headers: traceparent ? { traceparent, tracestate: 'vendor=abc' } : {},
    });
    expect(res.status).toBe(200);
    const sent = proxy.requestHeaders.slice(before);
    expect(sent).toHaveLength(1);
    expect([sent[0].traceparent, sent[0].tracestate]).toEqual([undefined, undefined]);
  });
});

describe('OpenTelemetry tracing on: OTEL_EXPORTER_OTLP_ENDPOINT set (e2e)', () => {
  let idp: RunningSandbox;
  let proxy: RecordingProxy;
  let receiver: OtlpReceiver;
  let svc: InProcessService | undefined;
  const traceId = hex(16);
  const callerSpanId = hex(8);
  let idpTraceparents: (string | undefined)[] = [];
  let statuses: number[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: CLIENTS.map((clientId) => ({ clientId, secret: SECRET })),
    });
    proxy = await startRecordingProxy(idp.tokenUrl);
    receiver = await startOtlpReceiver();
    svc = await startBehind(proxy, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint });
    statuses = [
      (
        await httpRequest(`${svc.url}/tokens/${CLIENTS[3]}`, {
          key: KEY,
          headers: {
            traceparent: traceparentOf(traceId, callerSpanId),
            'x-request-id': 'traced-1',
          },
        })
      ).status,
      (await httpRequest(`${svc.url}/tokens/${CLIENTS[4]}`, { key: KEY })).status,
    ];
    idpTraceparents = proxy.requestHeaders.map((h) => h.traceparent as string | undefined);
    // Closing the app exports what is still buffered.
    await svc.close();
    svc = undefined;
  });

  afterAll(async () => {
    await svc?.close();
    await receiver?.close();
    await proxy?.close();
    await idp?.close();
  });

  it('sends the IdP a child span of the caller’s trace: same trace id, a new span id', () => {
    expect(statuses).toEqual([200, 200]);
    expect(idpTraceparents).toHaveLength(2);
    const [first] = idpTraceparents;
    const [, sentTrace, sentSpan] = TRACEPARENT.exec(first ?? '') ?? [];
    expect(sentTrace).toBe(traceId);
    expect(sentSpan).toMatch(/^[0-9a-f]{16}$/);
    expect(sentSpan).not.toBe(callerSpanId);
    // A request without a traceparent starts a trace of its own, also passed on.
    const [, ownTrace] = TRACEPARENT.exec(idpTraceparents[1] ?? '') ?? [];
    expect(ownTrace).toMatch(/^[0-9a-f]{32}$/);
    expect(ownTrace).not.toBe(traceId);
  });

  it('exports the spans over OTLP/HTTP: server span under the caller, IdP client span under it', () => {
    expect(receiver.rejected).toEqual([]);
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const server = inTrace.filter((s) => s.kind === 2);
    const client = inTrace.filter((s) => s.kind === 3);
    expect(server).toHaveLength(1);
    expect(client).toHaveLength(1);
    expect(server[0]).toMatchObject({
      name: 'GET /tokens/:clientId',
      parentSpanId: callerSpanId,
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/tokens/:clientId',
        'http.response.status_code': 200,
        'token_vendor.request_id': 'traced-1',
      },
      resource: { 'service.name': 'token-vendor' },
    });
    const [, , sentSpan] = TRACEPARENT.exec(idpTraceparents[0] ?? '') ?? [];
    expect(client[0]).toMatchObject({
      spanId: sentSpan,
      parentSpanId: server[0].spanId,
      attributes: {
        'token_vendor.client_id': CLIENTS[3],
        'token_vendor.environment': 'uat',
        'token_vendor.outcome': 'ok',
        'http.response.status_code': 200,
      },
    });
  });

  it('never exports a caller key, secret or token in a span', () => {
    const text = JSON.stringify(receiver.spans);
    expect(text).not.toContain(KEY);
    expect(text).not.toContain(SECRET);
    expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+\./); // no JWT
  });
});
