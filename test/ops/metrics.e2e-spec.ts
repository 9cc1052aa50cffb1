import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { TOKEN_REQUEST_BUCKETS } from '@app/observability';
import { parsePrometheusText, series, type Sample } from './prometheus-text';
import { httpRequest, type InProcessService, type SimpleResponse, startService } from '../support';

/**
 * GET /metrics on the metrics port (README "Logs and metrics"): after a scripted set of
 * requests, every counter and histogram holds exactly what those requests caused — proactive
 * refresh is off, so nothing else adds to them — and no series, label or line carries a secret,
 * a caller key or an access token. The API port does not serve /metrics.
 */
const SECRET = 'metrics-secret-0001-SHOULD-NEVER-BE-EXPOSED';
const WRONG_SECRET = 'metrics-wrong-secret-0002-NEVER-EXPOSED';
const IDP_WRONG_SECRET = 'metrics-idp-side-secret-0003-NEVER-EXPOSED';
const CALLER_KEY = 'metrics-caller-key-0001-aaaaaaaaaaaaaaaaaaaa';
const UNKNOWN_KEY = 'metrics-unknown-key-0002-bbbbbbbbbbbbbbbbbb';
const LIFETIME = 1200;

describe('GET /metrics on METRICS_PORT (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  const accessTokens: string[] = [];
  let text: string;
  let samples: Sample[];
  let types: Map<string, string>;
  let scrape: SimpleResponse;
  let scrapedAt: number;

  const get = (path: string, key = CALLER_KEY) =>
    httpRequest(`${svc.url}${path}`, { headers: { Authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'metrics.client', secret: SECRET, scopes: ['deals-read'] },
        { clientId: 'rejected.client', secret: IDP_WRONG_SECRET, scopes: ['deals-read'] },
      ],
      expiresIn: LIFETIME,
    });
    svc = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: [
        { clientId: 'metrics.client', environment: 'uat', secret: SECRET, scope: 'deals-read' },
        { clientId: 'rejected.client', environment: 'uat', secret: WRONG_SECRET },
      ],
      callers: [{ name: 'metrics-caller', keys: [CALLER_KEY], clients: ['*'] }],
    });

    // The script: 3 served (1 IdP request), 1 unknown_client, 1 invalid_request,
    // 1 upstream_rejected (1 IdP request, refused).
    for (let i = 0; i < 3; i++) {
      const res = await get('/tokens/metrics.client');
      expect(res.status).toBe(200);
      accessTokens.push(res.json().access_token);
    }
    expect(new Set(accessTokens).size).toBe(1);
    expect((await get('/tokens/no-such.client')).status).toBe(404);
    expect((await get('/tokens/metrics.client?environment=uat&minTtl=abc')).status).toBe(400);
    const rejected = await get('/tokens/rejected.client');
    expect(rejected.status).toBe(502);
    expect(rejected.json().error).toBe('upstream_rejected');
    expect(idp.stats()).toMatchObject({ tokenRequests: 2, issued: 1, rejected: 1 });

    scrapedAt = Date.now();
    scrape = await httpRequest(`${svc.metricsUrl}/metrics`); // no Authorization
    text = scrape.text;
    ({ samples, types } = parsePrometheusText(text));
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  it('is served without a caller key as Prometheus text, on its own port', () => {
    expect(scrape.status).toBe(200);
    expect(scrape.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(samples.length).toBeGreaterThan(20);
    expect(new URL(svc.metricsUrl).port).not.toBe(new URL(svc.url).port);
  });

  it('is not served on the API port: 404 like any unknown path, listing no client', async () => {
    for (const key of [undefined, CALLER_KEY]) {
      const res = await httpRequest(`${svc.url}/metrics`, {
        headers: key ? { Authorization: `Bearer ${key}` } : {},
      });
      expect(res.status).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: expect.any(String) });
      expect(res.text).not.toContain('metrics.client');
    }
  });

  it('answers only GET and HEAD /metrics on the metrics port', async () => {
    const other = await httpRequest(`${svc.metricsUrl}/tokens/metrics.client`);
    expect(other.status).toBe(404);
    expect(other.text).not.toContain('metrics.client');
    expect((await httpRequest(`${svc.metricsUrl}/metrics`, { method: 'POST' })).status).toBe(405);
    const head = await httpRequest(`${svc.metricsUrl}/metrics`, { method: 'HEAD' });
    expect({ status: head.status, text: head.text }).toEqual({ status: 200, text: '' });
  });

  it('times GET /tokens by outcome in token_vendor_token_request_duration_seconds, without a client label', () => {
    const name = 'token_vendor_token_request_duration_seconds';
    expect(types.get(name)).toBe('histogram');
    expect(series(samples, `${name}_count`)).toEqual(
      [
        { outcome: 'served', value: 3 },
        { outcome: 'invalid_request', value: 1 },
        { outcome: 'unknown_client', value: 1 },
        { outcome: 'upstream_rejected', value: 1 },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    const served = samples.filter(
      (s) => s.name === `${name}_bucket` && s.labels.outcome === 'served',
    );
    expect(served.map((s) => s.labels.le)).toEqual([...TOKEN_REQUEST_BUCKETS.map(String), '+Inf']);
    expect(served.at(-1)?.value).toBe(3);
    // The three were answered (one IdP fetch, two from memory) well within 10 s.
    expect(served.find((s) => s.labels.le === '10')?.value).toBe(3);
    const sum = samples.find((s) => s.name === `${name}_sum` && s.labels.outcome === 'served');
    expect(sum?.value).toBeGreaterThan(0);
  });

  it('reports the build: token_vendor_build_info{version,node} 1', () => {
    expect(series(samples, 'token_vendor_build_info')).toEqual([
      { version: '0.1.0', node: process.version, value: 1 },
    ]);
  });

  it('counts every token request exactly once by client, environment and outcome', () => {
    expect(types.get('token_vendor_token_requests_total')).toBe('counter');
    expect(series(samples, 'token_vendor_token_requests_total')).toEqual(
      [
        { client_id: 'metrics.client', environment: 'uat', outcome: 'served', value: 3 },
        { client_id: 'metrics.client', environment: 'uat', outcome: 'invalid_request', value: 1 },
        // Unconfigured client ids are not labels: request text cannot mint series.
        { client_id: '(unknown)', environment: '(unknown)', outcome: 'unknown_client', value: 1 },
        {
          client_id: 'rejected.client',
          environment: 'uat',
          outcome: 'upstream_rejected',
          value: 1,
        },
      ].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    expect(text).not.toContain('no-such.client');
  });

  it('counts exactly the upstream attempts: one ok, one rejected', () => {
    expect(types.get('token_vendor_upstream_requests_total')).toBe('counter');
    expect(series(samples, 'token_vendor_upstream_requests_total')).toEqual([
      { client_id: 'metrics.client', environment: 'uat', outcome: 'ok', value: 1 },
      { client_id: 'rejected.client', environment: 'uat', outcome: 'rejected', value: 1 },
    ]);
    expect(
      series(samples, 'token_vendor_upstream_request_duration_seconds_count').map(
        ({ environment, outcome, value }) => ({ environment, outcome, value }),
      ),
    ).toEqual([
      { environment: 'uat', outcome: 'ok', value: 1 },
      { environment: 'uat', outcome: 'rejected', value: 1 },
    ]);
  });

  it('adds nothing for refresh while the scheduler is off', () => {
    expect(series(samples, 'token_vendor_refreshes_total')).toEqual([]);
    expect(series(samples, 'token_vendor_refresh_failures_total')).toEqual([]);
  });

  it('exposes one TTL series per held token, close to its lifetime', () => {
    expect(types.get('token_vendor_token_ttl_seconds')).toBe('gauge');
    const ttl = series(samples, 'token_vendor_token_ttl_seconds');
    expect(ttl).toHaveLength(1); // rejected.client holds nothing
    expect(ttl[0]).toMatchObject({ client_id: 'metrics.client', environment: 'uat' });
    const elapsed = (Date.now() - scrapedAt) / 1000;
    expect(ttl[0].value).toBeLessThanOrEqual(LIFETIME);
    expect(ttl[0].value).toBeGreaterThan(LIFETIME - 10 - elapsed);
  });

  it('includes the default process metrics under their standard names (no prefix)', () => {
    const names = new Set(samples.map((s) => s.name));
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(names).toContain(name);
    }
    expect(samples.find((s) => s.name === 'process_cpu_user_seconds_total')?.value).toBeGreaterThan(
      0,
    );
    expect([...names].filter((n) => /^token_vendor_(process|nodejs)_/.test(n))).toEqual([]);
  });

  it('never carries a secret, a caller key or an access token, in any line or label', () => {
    expect(accessTokens[0].length).toBeGreaterThan(20);
    const signature = accessTokens[0].split('.')[2];
    for (const value of [
      SECRET,
      WRONG_SECRET,
      IDP_WRONG_SECRET,
      CALLER_KEY,
      UNKNOWN_KEY,
      accessTokens[0],
      signature,
    ]) {
      expect(text).not.toContain(value);
    }
    for (const s of samples) {
      for (const label of Object.values(s.labels)) {
        expect(label).toMatch(/^[\w.:()+-]*$/); // ids, environment names, fixed words
      }
    }
  });

  it('keeps an unknown caller key out of the metrics too', async () => {
    const refused = await get('/tokens/metrics.client', UNKNOWN_KEY);
    expect(refused.status).toBe(401);
    const again = await httpRequest(`${svc.metricsUrl}/metrics`);
    expect(again.text).not.toContain(UNKNOWN_KEY);
    // The refused request was not a token request served or failed for a client.
    expect(
      series(parsePrometheusText(again.text).samples, 'token_vendor_token_requests_total').find(
        (s) => s.outcome === 'served',
      )?.value,
    ).toBe(3);
  });

  it('counts 401 and 429 answers in token_vendor_auth_failures_total{reason}', async () => {
    const failures = async (): Promise<Record<string, number>> => {
      const text = (await httpRequest(`${svc.metricsUrl}/metrics`)).text;
      const found = parsePrometheusText(text).samples.filter(
        (s) => s.name === 'token_vendor_auth_failures_total',
      );
      return Object.fromEntries(found.map((s) => [s.labels.reason, s.value]));
    };
    const before = await failures();
    const source = '127.0.0.77';
    const from = (headers: Record<string, string>) =>
      httpRequest(`${svc.url}/tokens/metrics.client`, { headers, localAddress: source });
    expect((await from({})).status).toBe(401);
    for (let i = 0; i < 9; i++)
      expect((await from({ Authorization: `Bearer ${UNKNOWN_KEY}` })).status).toBe(401);
    for (let i = 0; i < 2; i++)
      expect((await from({ Authorization: `Bearer ${UNKNOWN_KEY}` })).status).toBe(429);
    const after = await failures();
    const delta = (reason: string): number => (after[reason] ?? 0) - (before[reason] ?? 0);
    expect({
      missing: delta('missing_credentials'),
      invalid: delta('invalid_credentials'),
      limited: delta('rate_limited'),
    }).toEqual({ missing: 1, invalid: 9, limited: 2 });
    // 401 and 429 of GET /tokens are timed too, under their own outcomes.
    const timed = series(
      parsePrometheusText((await httpRequest(`${svc.metricsUrl}/metrics`)).text).samples,
      'token_vendor_token_request_duration_seconds_count',
    );
    expect(timed.find((s) => s.outcome === 'too_many_requests')?.value).toBe(2);
  });

  it('writes no access log line for scrapes', () => {
    const scrapeLines = svc.logs
      .entries()
      .filter((e) => (e.req as { url?: string } | undefined)?.url === '/metrics');
    expect(scrapeLines).toEqual([]);
  });
});
