import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BadAnswerError,
  CallerUnauthorizedError,
  ClientConfigError,
  InvalidRequestError,
  TokenVendorError,
  TooManyRequestsError,
  UnknownClientError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
  VendorUnreachableError,
  createTokenVendorClient,
  type TokenVendorClientOptions,
} from './index';
import { TestClock } from '../../../test/support/clock';

const START = Date.UTC(2026, 11, 1, 10, 0, 0);

interface Seen {
  url: string;
  method: string;
  authorization: string | null;
  body: string | undefined;
}

type Answer = Response | Error | ((seen: Seen) => Response);

/**
 * The transport of these small tests: records each request and plays the scripted answers in
 * order (the last one repeats). The e2e specs under test/client run against the real service.
 */
function scriptedTransport(...answers: Answer[]) {
  const seen: Seen[] = [];
  const transport = async (input: string | URL | Request, init?: RequestInit) => {
    const request = new Request(input, init);
    const entry: Seen = {
      url: request.url,
      method: request.method,
      authorization: request.headers.get('authorization'),
      body: request.body ? await request.text() : undefined,
    };
    seen.push(entry);
    const answer = answers[Math.min(seen.length - 1, answers.length - 1)];
    if (answer instanceof Error) throw answer;
    return typeof answer === 'function' ? answer(entry) : answer.clone();
  };
  return { seen, transport };
}

function tokenAnswer(accessToken: string, expiresIn = 1200, now = START): Response {
  return Response.json({
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: expiresIn,
    expires_at: new Date(now + expiresIn * 1000).toISOString(),
    scope: 'deals-read',
    client_id: 'deals.client',
    environment: 'uat',
  });
}

function errorAnswer(status: number, error: string, headers: Record<string, string> = {}) {
  return Response.json({ error, message: `${error} happened` }, { status, headers });
}

function sutWith(transport: typeof fetch, extra: Partial<TokenVendorClientOptions> = {}) {
  const clock = new TestClock({ start: START, sleeps: 'skip' });
  const sut = createTokenVendorClient({
    baseUrl: 'http://vendor.test:3000',
    callerKey: 'caller-key-0001',
    clock,
    random: () => 0.5,
    fetch: transport,
    ...extra,
  });
  return { sut, clock };
}

describe('createTokenVendorClient', () => {
  describe('getToken', () => {
    it('asks once, then answers from memory with the same body and no request', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'));
      const { sut } = sutWith(transport);

      const first = await sut.getToken('deals.client', { environment: 'uat' });
      const again = await sut.getToken('deals.client', { environment: 'uat' });

      expect(first.access_token).toBe('tok-1');
      expect(again).toBe(first);
      expect(seen).toEqual([
        {
          url: 'http://vendor.test:3000/tokens/deals.client?environment=uat',
          method: 'GET',
          authorization: 'Bearer caller-key-0001',
          body: undefined,
        },
      ]);
      expect(Object.isFrozen(first)).toBe(true);
    });

    it('keeps a path prefix of baseUrl and encodes the client id', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'));
      const { sut } = sutWith(transport, { baseUrl: 'https://gw.test/vendor' });
      await sut.getToken('a:b/c');
      expect(seen[0].url).toBe('https://gw.test/vendor/tokens/a%3Ab%2Fc');
    });

    it('holds a token until 60 s before it expires, then asks again', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'), tokenAnswer('tok-2'));
      const { sut, clock } = sutWith(transport);
      await sut.getToken('deals.client');

      clock.jumpTo(START + (1200 - 60) * 1000 - 1);
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-1');
      expect(seen).toHaveLength(1);

      clock.jumpTo(START + (1200 - 60) * 1000);
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-2');
      expect(seen).toHaveLength(2);
    });

    it('holds a short-lived token for four fifths of its life, not zero', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1', 20), tokenAnswer('tok-2'));
      const { sut, clock } = sutWith(transport);
      await sut.getToken('deals.client');
      clock.jumpTo(START + 16_000 - 1);
      await sut.getToken('deals.client');
      expect(seen).toHaveLength(1);
      clock.jumpTo(START + 16_000);
      await sut.getToken('deals.client');
      expect(seen).toHaveLength(2);
    });

    it('never hands out less than minTtl, and passes minTtl to the service', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'), tokenAnswer('tok-2'));
      const { sut, clock } = sutWith(transport);
      await sut.getToken('deals.client');
      clock.jumpTo(START + (1200 - 300) * 1000); // 300 s left: enough for the margin
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-1');
      expect((await sut.getToken('deals.client', { minTtl: 300 })).access_token).toBe('tok-2');
      expect(seen.map((s) => s.url)).toEqual([
        'http://vendor.test:3000/tokens/deals.client',
        'http://vendor.test:3000/tokens/deals.client?minTtl=300',
      ]);
    });

    it('counts expiry from when the request was sent, by its own clock (not expires_at)', async () => {
      // The service's clock runs 10 minutes ahead: expires_at alone would look 10 minutes shorter.
      const { seen, transport } = scriptedTransport(
        tokenAnswer('tok-1', 1200, START + 600_000),
        tokenAnswer('tok-2'),
      );
      const { sut, clock } = sutWith(transport);
      await sut.getToken('deals.client');
      clock.jumpTo(START + 1000_000);
      await sut.getToken('deals.client');
      expect(seen).toHaveLength(1);
    });

    it('shares one request among 100 concurrent calls for one client and environment', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'));
      const { sut } = sutWith(async (input, init) => {
        await gate;
        return transport(input, init);
      });
      const calls = Array.from({ length: 100 }, () => sut.getToken('deals.client'));
      const other = sut.getToken('deals.client', { environment: 'production' });
      release();
      const tokens = await Promise.all(calls);
      await other;
      expect(new Set(tokens.map((t) => t.access_token))).toEqual(new Set(['tok-1']));
      // One for the 100, one for the other environment.
      expect(seen).toHaveLength(2);
    });

    it('a call asking for more minTtl than the request in flight makes its own request', async () => {
      const { seen, transport } = scriptedTransport(tokenAnswer('tok-1'), tokenAnswer('tok-2'));
      const { sut } = sutWith(transport);
      const [a, b] = await Promise.all([
        sut.getToken('deals.client'),
        sut.getToken('deals.client', { minTtl: 600 }),
      ]);
      expect([a.access_token, b.access_token]).toEqual(['tok-1', 'tok-2']);
      expect(seen[1].url).toMatch(/minTtl=600$/);
    });

    it('retries a 503, waiting at least its Retry-After', async () => {
      const { seen, transport } = scriptedTransport(
        errorAnswer(503, 'upstream_unavailable', { 'retry-after': '2' }),
        tokenAnswer('tok-1'),
      );
      const { sut, clock } = sutWith(transport);
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-1');
      expect(seen).toHaveLength(2);
      expect(clock.sleeps).toEqual([2000]);
    });

    it('retries network errors with jittered exponential backoff, then gives up typed', async () => {
      const refused = new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      const { seen, transport } = scriptedTransport(refused);
      const { sut, clock } = sutWith(transport, { maxAttempts: 3 });
      const error = await sut.getToken('deals.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VendorUnreachableError);
      expect((error as Error).message).toMatch(/ECONNREFUSED.*3 attempt/);
      expect(seen).toHaveLength(3);
      // random() = 0.5 of 200 ms, then of 400 ms.
      expect(clock.sleeps).toEqual([100, 200]);
    });

    it('does not wait out a Retry-After longer than 30 s: the error carries it', async () => {
      const { seen, transport } = scriptedTransport(
        errorAnswer(503, 'upstream_unavailable', { 'retry-after': '120' }),
      );
      const { sut, clock } = sutWith(transport);
      const error = await sut.getToken('deals.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({
        status: 503,
        code: 'upstream_unavailable',
        retryAfterSeconds: 120,
      });
      expect(seen).toHaveLength(1);
      expect(clock.sleeps).toEqual([]);
    });

    it.each([
      [400, 'invalid_request', InvalidRequestError],
      [401, 'unauthorized', CallerUnauthorizedError],
      [404, 'unknown_client', UnknownClientError],
      [429, 'too_many_requests', TooManyRequestsError],
      [502, 'upstream_rejected', UpstreamRejectedError],
    ])('a %i is a typed error, not retried and not held', async (status, code, type) => {
      const { seen, transport } = scriptedTransport(
        errorAnswer(status, code),
        tokenAnswer('tok-1'),
      );
      const { sut } = sutWith(transport);
      const error = await sut.getToken('deals.client').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(type);
      expect(error).toBeInstanceOf(TokenVendorError);
      expect(error).toMatchObject({
        status,
        code,
        message: `token-vendor answered ${status} ${code}: ${code} happened`,
      });
      expect(seen).toHaveLength(1);
      // The failure is not remembered: the next call asks again.
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-1');
    });

    it.each([
      ['not JSON', new Response('<html>proxy</html>', { status: 200 })],
      ['no access_token', Response.json({ token_type: 'Bearer', expires_in: 10 })],
    ])('a 200 that is %s is a BadAnswerError and nothing is held', async (_name, answer) => {
      const { seen, transport } = scriptedTransport(answer, tokenAnswer('tok-1'));
      const { sut } = sutWith(transport);
      await expect(sut.getToken('deals.client')).rejects.toBeInstanceOf(BadAnswerError);
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-1');
      expect(seen).toHaveLength(2);
    });
  });

  describe('fetchWithToken', () => {
    const digest = (t: string) => createHash('sha256').update(t).digest('hex');

    it('sends the held token; a downstream 401 is reported once and retried once with the answer', async () => {
      const vendor = scriptedTransport(tokenAnswer('tok-old'), tokenAnswer('tok-new'));
      const downstream: Seen[] = [];
      const transport = async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input instanceof Request ? input.url : input);
        if (url.startsWith('http://vendor.test')) return vendor.transport(input, init);
        const request = input as Request;
        downstream.push({
          url: request.url,
          method: request.method,
          authorization: request.headers.get('authorization'),
          body: await request.text(),
        });
        return request.headers.get('authorization') === 'Bearer tok-new'
          ? new Response('ok')
          : new Response('expired', { status: 401 });
      };
      const { sut } = sutWith(transport);

      const res = await sut.fetchWithToken('deals.client', 'https://api.test/deals', {
        method: 'POST',
        body: '{"a":1}',
        headers: { 'content-type': 'application/json' },
      });

      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      expect(downstream).toEqual([
        {
          url: 'https://api.test/deals',
          method: 'POST',
          authorization: 'Bearer tok-old',
          body: '{"a":1}',
        },
        {
          url: 'https://api.test/deals',
          method: 'POST',
          authorization: 'Bearer tok-new',
          body: '{"a":1}',
        },
      ]);
      expect(vendor.seen.map((s) => [s.method, s.url, s.body])).toEqual([
        ['GET', 'http://vendor.test:3000/tokens/deals.client', undefined],
        [
          'POST',
          'http://vendor.test:3000/tokens/deals.client/rejections',
          JSON.stringify({ token_sha256: digest('tok-old') }),
        ],
      ]);
      // The answer is held: the next call uses it without asking.
      expect((await sut.getToken('deals.client')).access_token).toBe('tok-new');
      expect(vendor.seen).toHaveLength(2);
    });

    it('a second 401 is returned as it is: one report, one retry, no loop', async () => {
      const vendor = scriptedTransport(tokenAnswer('tok-1'), tokenAnswer('tok-2'));
      let downstreamCalls = 0;
      const transport = async (input: string | URL | Request, init?: RequestInit) => {
        if (String(input instanceof Request ? input.url : input).startsWith('http://vendor.test'))
          return vendor.transport(input, init);
        downstreamCalls++;
        return new Response('no', { status: 401 });
      };
      const { sut } = sutWith(transport);
      const res = await sut.fetchWithToken('deals.client', 'https://api.test/x', undefined, {
        environment: 'uat',
      });
      expect(res.status).toBe(401);
      expect(downstreamCalls).toBe(2);
      expect(vendor.seen.map((s) => s.url)).toEqual([
        'http://vendor.test:3000/tokens/deals.client?environment=uat',
        'http://vendor.test:3000/tokens/deals.client/rejections?environment=uat',
      ]);
    });

    it('concurrent 401s with one token make one report', async () => {
      const vendor = scriptedTransport(tokenAnswer('tok-1'), tokenAnswer('tok-2'));
      const transport = async (input: string | URL | Request, init?: RequestInit) => {
        if (String(input instanceof Request ? input.url : input).startsWith('http://vendor.test'))
          return vendor.transport(input, init);
        const auth = (input as Request).headers.get('authorization');
        return new Response(null, { status: auth === 'Bearer tok-2' ? 204 : 401 });
      };
      const { sut } = sutWith(transport);
      await sut.getToken('deals.client');
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => sut.fetchWithToken('deals.client', 'https://api.test/x')),
      );
      expect(answers.map((r) => r.status)).toEqual(Array(10).fill(204));
      expect(vendor.seen.filter((s) => s.method === 'POST')).toHaveLength(1);
    });
  });

  describe('caller credential files', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'tv-client-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('re-reads a rotated key file (replaced by rename, as a Kubernetes volume does)', async () => {
      const file = join(dir, 'key');
      writeFileSync(file, 'key-one\n');
      const { seen, transport } = scriptedTransport(tokenAnswer('tok'));
      const { sut } = sutWith(transport, { callerKey: undefined, callerKeyFile: file });
      await sut.getToken('a.client');
      writeFileSync(join(dir, 'key.next'), 'key-two\n');
      renameSync(join(dir, 'key.next'), file);
      await sut.getToken('b.client');
      expect(seen.map((s) => s.authorization)).toEqual(['Bearer key-one', 'Bearer key-two']);
    });

    it('a 401 re-reads the token file and retries once when it changed', async () => {
      const file = join(dir, 'token');
      writeFileSync(file, 'jwt-one');
      const { seen, transport } = scriptedTransport((s) =>
        s.authorization === 'Bearer jwt-two'
          ? tokenAnswer('tok')
          : errorAnswer(401, 'unauthorized'),
      );
      const { sut } = sutWith(transport, { callerKey: undefined, callerTokenFile: file });
      await expect(sut.getToken('a.client')).rejects.toBeInstanceOf(CallerUnauthorizedError);
      expect(seen).toHaveLength(1); // unchanged file: no retry
      // Same size: should the mtime tick not move either, the 401 path still reads the file.
      writeFileSync(file, 'jwt-two');
      expect((await sut.getToken('a.client')).access_token).toBe('tok');
    });

    it('an unreadable file is a ClientConfigError naming the option, never its content', async () => {
      const { transport } = scriptedTransport(tokenAnswer('tok'));
      const { sut } = sutWith(transport, {
        callerKey: undefined,
        callerTokenFile: join(dir, 'missing'),
      });
      await expect(sut.getToken('a.client')).rejects.toThrow(
        new ClientConfigError(`callerTokenFile: cannot read ${join(dir, 'missing')} (ENOENT)`),
      );
    });
  });

  it.each([
    [{}, /exactly one of callerKey, callerKeyFile, callerTokenFile \(got none\)/],
    [{ callerKey: 'a', callerKeyFile: '/x' }, /\(got callerKey, callerKeyFile\)/],
    [{ callerKey: 'a', baseUrl: 'vendor:3000/x y' }, /baseUrl/],
    [{ callerKey: 'a', timeoutMs: 0 }, /timeoutMs/],
  ])('refuses bad options %j', (options, message) => {
    expect(() =>
      createTokenVendorClient({
        baseUrl: 'http://vendor.test',
        ...options,
      }),
    ).toThrow(message);
  });
});
