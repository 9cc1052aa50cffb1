import { request } from 'node:http';
import { FAULT_BODIES, startIdentitySandbox, type RunningSandbox } from './index';
import type { FaultMode } from './types';
import { decodeJwt, DEMO_ID, demoParams, postToken, jsonOf } from './spec-support';

describe('fault injection on /connect/token', () => {
  let sandbox: RunningSandbox;

  beforeAll(async () => {
    sandbox = await startIdentitySandbox({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => sandbox.close());
  beforeEach(() => {
    sandbox.clearFault();
    sandbox.resetStats();
  });

  /** The stats after exactly one faulted request that issued no token. */
  const oneFaultedRequest = {
    tokenRequests: 1,
    byClient: { [DEMO_ID]: 1 },
    issued: 0,
    rejected: 0,
    faulted: 1,
  };

  it('status_500: 500 text/html <html>error</html>', async () => {
    sandbox.setFault({ mode: 'status_500' });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(await res.text()).toBe('<html>error</html>');
    expect(sandbox.stats()).toEqual(oneFaultedRequest);
  });

  it('status_503: 503 with Retry-After when given', async () => {
    sandbox.setFault({ mode: 'status_503', retryAfter: 7 });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.text()).toBe(FAULT_BODIES.status_503);
  });

  it('status_503: no Retry-After when not given', async () => {
    sandbox.setFault({ mode: 'status_503' });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull();
  });

  it('status_429: 429 with the given Retry-After, 1 by default', async () => {
    sandbox.setFault({ mode: 'status_429', retryAfter: 3, count: 1 });
    const first = await postToken(sandbox, demoParams());
    sandbox.setFault({ mode: 'status_429', count: 1 });
    const second = await postToken(sandbox, demoParams());
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('3');
    expect(await first.text()).toBe('<html>Too Many Requests</html>');
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
  });

  it('html: 200 text/html login page', async () => {
    sandbox.setFault({ mode: 'html' });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(await res.text()).toBe('<html><body>Login</body></html>');
  });

  it('truncated_json: 200 application/json cut inside the token', async () => {
    sandbox.setFault({ mode: 'truncated_json' });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
    const text = await res.text();
    expect(text).toBe('{"access_token":"eyJ');
    expect(() => JSON.parse(text) as unknown).toThrow(SyntaxError);
  });

  it('no_access_token: 200 without access_token', async () => {
    sandbox.setFault({ mode: 'no_access_token' });
    const res = await postToken(sandbox, demoParams());
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"expires_in":1200,"token_type":"Bearer"}');
    expect(sandbox.stats()).toEqual(oneFaultedRequest);
  });

  it('wrong_token_type: a valid token typed "mac"', async () => {
    sandbox.setFault({ mode: 'wrong_token_type' });
    const res = await postToken(sandbox, demoParams());
    const body = await jsonOf(res);
    expect(res.status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      expires_in: 1200,
      token_type: 'mac',
      scope: 'deals-read permissions-read',
    });
    expect(decodeJwt(body.access_token).payload.client_id).toBe(DEMO_ID);
    expect(sandbox.stats()).toEqual({ ...oneFaultedRequest, issued: 1 });
  });

  it.each(['invalid_client', 'invalid_scope'] as const)(
    '%s: 400 with that error even for good credentials',
    async (mode) => {
      sandbox.setFault({ mode });
      const res = await postToken(sandbox, demoParams());
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/json; charset=UTF-8');
      expect(await jsonOf(res)).toEqual({ error: mode });
      expect(sandbox.stats()).toEqual(oneFaultedRequest);
    },
  );

  it.each<[string, unknown, Record<string, unknown>]>([
    ['a numeric string', '1200', { expires_in: '1200' }],
    ['zero', 0, { expires_in: 0 }],
    ['a negative number', -5, { expires_in: -5 }],
    ['a fraction', 0.5, { expires_in: 0.5 }],
    ['an absurd number', 1e12, { expires_in: 1e12 }],
    ['null (omitted)', null, {}],
    ['undefined (omitted)', undefined, {}],
  ])('expires_in: %s', async (_name, expiresIn, expected) => {
    sandbox.setFault({ mode: 'expires_in', expiresIn });
    const res = await postToken(sandbox, demoParams());
    const body = await jsonOf(res);
    expect(res.status).toBe(200);
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      scope: 'deals-read permissions-read',
      ...expected,
    });
    // The token itself stays a normal one.
    const { iat, exp } = decodeJwt(body.access_token).payload as { iat: number; exp: number };
    expect(exp - iat).toBe(1200);
  });

  it('slow: answers normally after delayMs', async () => {
    sandbox.setFault({ mode: 'slow', delayMs: 300 });
    const started = Date.now();
    const res = await postToken(sandbox, demoParams());
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect((await jsonOf(res)).token_type).toBe('Bearer');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(sandbox.stats()).toEqual({ ...oneFaultedRequest, issued: 1 });
  });

  it('slow: still authenticates after the delay', async () => {
    sandbox.setFault({ mode: 'slow', delayMs: 10 });
    const res = await postToken(sandbox, demoParams({ client_secret: 'wrong' }));
    expect(res.status).toBe(400);
    expect(await jsonOf(res)).toEqual({ error: 'invalid_client' });
    expect(sandbox.stats()).toMatchObject({ faulted: 1, rejected: 1, issued: 0 });
  });

  it('reset: the connection is reset without an answer', async () => {
    sandbox.setFault({ mode: 'reset' });
    const error: unknown = await postToken(sandbox, demoParams()).then(
      () => undefined,
      (e: unknown) => e,
    );
    // fetch's TypeError comes from another realm than jest's, so compare by name.
    expect((error as Error).name).toBe('TypeError');
    expect((error as Error).message).toBe('fetch failed');
    expect((error as { cause: { code: string } }).cause.code).toBe('ECONNRESET');
    expect(sandbox.stats()).toEqual(oneFaultedRequest);
    expect(sandbox.requests()).toEqual([
      expect.objectContaining({ clientId: DEMO_ID, fault: 'reset' }),
    ]);
    expect(sandbox.requests()[0]).not.toHaveProperty('status');
  });

  it('timeout: accepts the request and never answers', async () => {
    sandbox.setFault({ mode: 'timeout' });
    const error: unknown = await postToken(
      sandbox,
      demoParams(),
      {},
      AbortSignal.timeout(200),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe('TimeoutError');
    expect(sandbox.stats()).toEqual(oneFaultedRequest);
    expect(sandbox.requests()[0]).not.toHaveProperty('status');
  });

  it('count: applies to the next N token requests, then clears itself', async () => {
    sandbox.setFault({ mode: 'status_500', count: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await postToken(sandbox, demoParams())).status);
    expect(statuses).toEqual([500, 500, 200, 200]);
    expect(sandbox.stats()).toEqual({
      tokenRequests: 4,
      byClient: { [DEMO_ID]: 4 },
      issued: 2,
      rejected: 0,
      faulted: 2,
    });
  });

  it('without count: applies until cleared', async () => {
    sandbox.setFault({ mode: 'invalid_client' });
    expect((await postToken(sandbox, demoParams())).status).toBe(400);
    expect((await postToken(sandbox, demoParams())).status).toBe(400);
    sandbox.clearFault();
    expect((await postToken(sandbox, demoParams())).status).toBe(200);
  });

  it('mode none clears the fault', async () => {
    sandbox.setFault({ mode: 'status_500' });
    sandbox.setFault({ mode: 'none' });
    expect((await postToken(sandbox, demoParams())).status).toBe(200);
    expect(sandbox.stats().faulted).toBe(0);
  });

  it('applies before authentication (an unknown client gets the fault too)', async () => {
    sandbox.setFault({ mode: 'status_500', count: 1 });
    const res = await postToken(sandbox, demoParams({ client_id: 'nobody' }));
    expect(res.status).toBe(500);
  });

  it('leaves the other endpoints alone', async () => {
    sandbox.setFault({ mode: 'status_500' });
    expect((await fetch(`${sandbox.url}/health`)).status).toBe(200);
    expect((await fetch(`${sandbox.url}/.well-known/openid-configuration`)).status).toBe(200);
    expect(sandbox.stats().faulted).toBe(0);
  });

  it('refuses an invalid fault', () => {
    expect(() => sandbox.setFault({ mode: 'explode' as FaultMode })).toThrow(
      /^fault\.mode must be one of none, /,
    );
    expect(() => sandbox.setFault({ mode: 'slow', delayMs: -1 })).toThrow(
      'fault.delayMs must be an integer from 0 to 600000',
    );
    expect(() => sandbox.setFault({ mode: 'status_500', count: 0 })).toThrow(
      'fault.count must be a positive integer',
    );
  });
});

describe('close() with requests in flight', () => {
  it('destroys a hung timeout connection and resolves promptly', async () => {
    const sandbox = await startIdentitySandbox();
    sandbox.setFault({ mode: 'timeout' });
    const outcome = new Promise<string>((resolve) => {
      const req = request(sandbox.tokenUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        agent: false,
      });
      req.on('response', () => resolve('answered'));
      req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      req.end(new URLSearchParams(demoParams()).toString());
    });
    await waitFor(() => sandbox.stats().faulted === 1);

    const started = Date.now();
    await sandbox.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await outcome).toBe('ECONNRESET');
  });

  it('cancels a slow answer', async () => {
    const sandbox = await startIdentitySandbox();
    sandbox.setFault({ mode: 'slow', delayMs: 60_000 });
    const pending = postToken(sandbox, demoParams()).then(
      (res) => res.status,
      () => 'failed',
    );
    await waitFor(() => sandbox.stats().faulted === 1);
    const started = Date.now();
    await sandbox.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await pending).toBe('failed');
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (!condition()) throw new Error('condition not met within 1 s');
}
