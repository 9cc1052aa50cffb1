import { CLOCK } from '@app/clock';
import { UpstreamRejectedError, UpstreamUnavailableError } from '@app/errors';
import { Global, Logger, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { PeriodicModule } from '@app/periodic';
import { createServer } from 'node:net';
import { fakeJwt } from '../test/fake-jwt';
import {
  ScriptedIdp,
  after,
  gzipJson,
  hang,
  json,
  reset,
  text,
  type Reply,
} from '../test/scripted-idp';
import { basicAuthorization } from './client-authentication';
import { OAuthClient } from './oauth.client';
import type { TokenRequest } from './token-request';
import { UpstreamModule } from './upstream.module';
import { UPSTREAM_OBSERVER, type UpstreamAttempt } from './upstream-observer';
import { TestClock } from '../../../test/support/clock';

const SECRET = 'S3cr3t:with%odd chars+é';
const MARKER = 'IDP-BODY-MARKER';
const TOKEN = fakeJwt({ exp: Date.UTC(2026, 10, 27, 12, 0, 0) / 1000, client_id: 'api-fake' });
const CAS_ANSWER = { access_token: TOKEN, expires_in: 1200, token_type: 'Bearer' };

let idp: ScriptedIdp;
let logLines: unknown[][];

beforeAll(async () => {
  idp = await ScriptedIdp.start();
});
afterAll(() => idp.close());

beforeEach(() => {
  // Capture (and silence) everything the client logs, to check no secret or body leaks.
  logLines = [];
  for (const level of ['log', 'warn', 'error', 'debug', 'verbose'] as const) {
    jest.spyOn(Logger.prototype, level).mockImplementation((...args: unknown[]) => {
      logLines.push(args);
    });
  }
});
afterEach(() => jest.restoreAllMocks());

function request(overrides: Partial<TokenRequest> = {}): TokenRequest {
  return {
    environment: 'uat',
    clientId: 'api-fake-test.client',
    secret: SECRET,
    authMethod: 'client_secret_post',
    tokenUrl: idp.url,
    timeoutMs: 2000,
    ...overrides,
  };
}

async function failureOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

/** Lets the event loop run until `condition` holds (real sockets need real turns). */
async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('OAuthClient against a real HTTP token endpoint', () => {
  let clock: TestClock;
  let sut: OAuthClient;

  beforeEach(() => {
    clock = new TestClock({ sleeps: 'skip' });
    sut = new OAuthClient(clock);
  });

  describe('request shape', () => {
    it('client_secret_post: POSTs the form with the credentials in the body', async () => {
      idp.reply(json(200, CAS_ANSWER));
      await sut.fetchToken(request({ scope: 'deals-read permissions-read' }));

      expect(idp.requests).toHaveLength(1);
      const [sent] = idp.requests;
      expect(sent.method).toBe('POST');
      expect(sent.path).toBe('/connect/token');
      expect(sent.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(sent.headers.accept).toBe('application/json');
      expect(sent.headers.authorization).toBeUndefined();
      expect(sent.form).toEqual({
        grant_type: 'client_credentials',
        scope: 'deals-read permissions-read',
        client_id: 'api-fake-test.client',
        client_secret: SECRET,
      });
    });

    it('sends no scope when none is configured', async () => {
      idp.reply(json(200, CAS_ANSWER));
      await sut.fetchToken(request());
      expect(Object.keys(idp.requests[0].form).sort()).toEqual([
        'client_id',
        'client_secret',
        'grant_type',
      ]);
    });

    it('client_secret_basic: credentials in the Authorization header only', async () => {
      idp.reply(json(200, CAS_ANSWER));
      await sut.fetchToken(request({ authMethod: 'client_secret_basic', scope: 'deals-read' }));

      const [sent] = idp.requests;
      expect(sent.headers.authorization).toBe(basicAuthorization('api-fake-test.client', SECRET));
      expect(sent.form).toEqual({ grant_type: 'client_credentials', scope: 'deals-read' });
      expect(sent.body).not.toContain('client_secret');
      expect(sent.body).not.toContain(encodeURIComponent(SECRET));
    });
  });

  describe('success', () => {
    it('returns the token with expiresAt = requestedAt + lifetime', async () => {
      idp.reply(json(200, { ...CAS_ANSWER, scope: 'deals-read' }));
      const token = await sut.fetchToken(request({ scope: 'deals-read permissions-read' }));
      expect(token).toEqual({
        accessToken: TOKEN,
        tokenType: 'Bearer',
        scope: 'deals-read',
        requestedAt: clock.now(),
        expiresAt: clock.now() + 1_200_000,
        lifetimeSeconds: 1200,
      });
    });

    it('counts the lifetime from when the request was sent, not from the answer', async () => {
      const manual = new TestClock();
      const sentAt = manual.now();
      idp.reply(after(() => manual.advance(7000), json(200, CAS_ANSWER)));
      const token = await new OAuthClient(manual).fetchToken(request());
      expect(manual.now()).toBe(sentAt + 7000);
      expect(token.requestedAt).toBe(sentAt);
      expect(token.expiresAt).toBe(sentAt + 1_200_000);
    });

    it('reads a gzip-compressed answer', async () => {
      idp.reply(gzipJson(200, CAS_ANSWER));
      await expect(sut.fetchToken(request())).resolves.toMatchObject({ accessToken: TOKEN });
    });
  });

  describe('retries', () => {
    it('retries 5xx: 500, 500, 200 succeeds after exactly 3 requests with jittered backoff', async () => {
      idp.reply(json(500, {}), text(502, 'Bad Gateway'), json(200, CAS_ANSWER));
      const token = await sut.fetchToken(request());

      expect(token.accessToken).toBe(TOKEN);
      expect(idp.requests).toHaveLength(3);
      expect(clock.sleeps).toHaveLength(2);
      expect(clock.sleeps[0]).toBeGreaterThanOrEqual(0);
      expect(clock.sleeps[0]).toBeLessThan(250);
      expect(clock.sleeps[1]).toBeLessThan(500);
      // The successful attempt's send time, i.e. after both backoff sleeps.
      expect(token.requestedAt).toBe(clock.now());
    });

    it('gives up after exactly 3 requests of 500 with bad_status and the default Retry-After', async () => {
      idp.reply(json(500, {}), json(500, {}), json(500, {}));
      const error = await failureOf(sut.fetchToken(request()));

      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ reason: 'bad_status', retryAfterSeconds: 5 });
      expect(error.message).toContain('HTTP 500');
      expect(idp.requests).toHaveLength(3);
    });

    it('honours maxAttempts', async () => {
      idp.reply(json(500, {}), json(500, {}));
      await expect(sut.fetchToken(request(), { maxAttempts: 1 })).rejects.toThrow(
        UpstreamUnavailableError,
      );
      expect(idp.requests).toHaveLength(1);
    });

    it.each<[string, Reply, number]>([
      ['429 with Retry-After: 1', json(429, {}, { 'Retry-After': '1' }), 1000],
      [
        '503 with an HTTP-date Retry-After',
        json(503, {}, { 'Retry-After': 'Fri, 27 Nov 2026 10:00:02 GMT' }),
        2000,
      ],
    ])('waits out %s on the injected clock', async (_case, first, expectedSleep) => {
      const manual = new TestClock();
      const sleep = jest.spyOn(manual, 'sleep');
      const client = new OAuthClient(manual);
      idp.reply(first, json(200, CAS_ANSWER));

      const pending = client.fetchToken(request());
      await until(() => manual.pendingSleeps === 1);
      expect(sleep).toHaveBeenCalledTimes(1);
      expect(sleep.mock.calls[0][0]).toBe(expectedSleep);

      await manual.advance(expectedSleep - 1);
      expect(manual.pendingSleeps).toBe(1);
      expect(idp.requests).toHaveLength(1);

      const sendTime = manual.now() + 1;
      await manual.advance(1);
      const token = await pending;
      expect(idp.requests).toHaveLength(2);
      expect(token.requestedAt).toBe(sendTime);
    });

    it('fails at once with the IdP Retry-After when it is longer than 30 s', async () => {
      idp.reply(json(503, {}, { 'Retry-After': '120' }), json(200, CAS_ANSWER));
      const error = await failureOf(sut.fetchToken(request()));

      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ reason: 'bad_status', retryAfterSeconds: 120 });
      expect(idp.requests).toHaveLength(1);
      expect(clock.sleeps).toEqual([]);
    });

    it('passes the IdP Retry-After on when the attempts run out', async () => {
      const tooMany = json(429, {}, { 'Retry-After': '2' });
      idp.reply(tooMany, tooMany, tooMany);
      const error = await failureOf(sut.fetchToken(request()));

      expect(error).toMatchObject({ reason: 'bad_status', retryAfterSeconds: 2 });
      expect(clock.sleeps).toEqual([2000, 2000]);
    });

    it('ignores Retry-After on statuses that do not carry it', async () => {
      idp.reply(json(500, {}, { 'Retry-After': '25' }), json(200, CAS_ANSWER));
      await sut.fetchToken(request());
      expect(clock.sleeps[0]).toBeLessThan(250);
    });

    it('retries a reset connection', async () => {
      idp.reply(reset(), json(200, CAS_ANSWER));
      await expect(sut.fetchToken(request())).resolves.toMatchObject({ accessToken: TOKEN });
      expect(idp.requests).toHaveLength(2);
    });

    it('reports network when every connection is reset', async () => {
      idp.reply(reset(), reset(), reset());
      const error = await failureOf(sut.fetchToken(request()));
      expect(error).toMatchObject({ reason: 'network', retryAfterSeconds: 5 });
      expect(idp.requests).toHaveLength(3);
    });

    it('reports network when nothing listens on the port', async () => {
      const closedPort = await new Promise<number>((resolve) => {
        const probe = createServer().listen(0, '127.0.0.1', () => {
          const { port } = probe.address() as { port: number };
          probe.close(() => resolve(port));
        });
      });
      const error = await failureOf(
        sut.fetchToken(request({ tokenUrl: `http://127.0.0.1:${closedPort}/connect/token` })),
      );
      expect(error).toMatchObject({ reason: 'network' });
      expect(clock.sleeps).toHaveLength(2);
    });

    it('reports timeout when the IdP never answers', async () => {
      idp.reply(hang(), hang());
      const started = Date.now();
      const error = await failureOf(
        sut.fetchToken(request({ timeoutMs: 200 }), { maxAttempts: 2 }),
      );
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(error).toMatchObject({ reason: 'timeout' });
      expect(idp.requests).toHaveLength(2);
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });

  describe('answers that are not retried', () => {
    it.each<[string, Reply, string]>([
      ['400 invalid_client', json(400, { error: 'invalid_client' }), 'invalid_client'],
      ['400 invalid_scope', json(400, { error: 'invalid_scope' }), 'invalid_scope'],
      ['401 invalid_client', json(401, { error: 'invalid_client' }), 'invalid_client'],
      ['401 without a body', text(401, ''), 'invalid_client'],
      ['401 with an HTML body', text(401, '<h1>401</h1>'), 'invalid_client'],
    ])('%s → UpstreamRejectedError after exactly 1 request', async (_case, reply, rejection) => {
      idp.reply(reply, json(200, CAS_ANSWER));
      const error = await failureOf(sut.fetchToken(request()));

      expect(error).toBeInstanceOf(UpstreamRejectedError);
      expect(error).toMatchObject({ rejection });
      expect(idp.requests).toHaveLength(1);
    });

    it.each<[string, string, Reply]>([
      ['404', 'bad_status', text(404, 'Not Found')],
      ['403', 'bad_status', json(403, { error: 'access_denied' })],
      ['400 without an OAuth error', 'bad_status', text(400, 'Bad Request')],
      ['a redirect (not followed)', 'bad_status', text(307, '', { Location: '/elsewhere' })],
      [
        '200 with HTML',
        'bad_answer',
        text(200, '<html>login</html>', { 'Content-Type': 'text/html' }),
      ],
      ['200 with truncated JSON', 'bad_answer', text(200, '{"access_token":"eyJ')],
      [
        '200 without access_token',
        'bad_answer',
        json(200, { token_type: 'Bearer', expires_in: 1200 }),
      ],
      ['200 with token_type mac', 'bad_answer', json(200, { ...CAS_ANSWER, token_type: 'mac' })],
      ['200 with a 100 KiB body', 'bad_answer', text(200, ' '.repeat(100 * 1024))],
    ])(
      '%s → UpstreamUnavailableError(%s) after exactly 1 request',
      async (_case, reason, reply) => {
        idp.reply(reply, json(200, CAS_ANSWER));
        const error = await failureOf(sut.fetchToken(request()));

        expect(error).toBeInstanceOf(UpstreamUnavailableError);
        expect(error).toMatchObject({ reason });
        expect(idp.requests).toHaveLength(1);
        expect(clock.sleeps).toEqual([]);
      },
    );
  });

  describe('confidentiality', () => {
    const echo = `${MARKER} client_secret=${SECRET} access_token=${TOKEN}`;
    it.each<[string, Reply[]]>([
      ['400', [json(400, { error: 'invalid_client', error_description: echo })]],
      ['401', [text(401, echo)]],
      ['404', [text(404, echo)]],
      ['200 HTML', [text(200, `<html>${echo}</html>`)]],
      ['200 bad token_type', [json(200, { ...CAS_ANSWER, token_type: echo })]],
      ['500 × 3', [text(500, echo), text(500, echo), text(500, echo)]],
    ])(
      '%s: neither the error nor the log holds the secret, the token or the IdP body',
      async (_case, replies) => {
        idp.reply(...replies);
        const error = await failureOf(sut.fetchToken(request()));
        const exposed = JSON.stringify([error.message, String(error), logLines]);

        expect(logLines.length).toBeGreaterThan(0);
        for (const needle of [MARKER, SECRET, encodeURIComponent(SECRET), TOKEN]) {
          expect(exposed).not.toContain(needle);
        }
      },
    );

    it('logs environment, client, attempt, cause and status', async () => {
      idp.reply(json(500, {}), json(200, CAS_ANSWER));
      await sut.fetchToken(request());
      expect(logLines).toContainEqual([
        expect.objectContaining({
          environment: 'uat',
          clientId: 'api-fake-test.client',
          attempt: 1,
          cause: 'bad_status',
          status: 500,
        }),
      ]);
    });
  });

  describe('cancellation', () => {
    it('a caller AbortSignal aborts the retry sleep', async () => {
      const manual = new TestClock();
      const client = new OAuthClient(manual);
      const controller = new AbortController();
      idp.reply(json(500, {}), json(200, CAS_ANSWER));

      const pending = client.fetchToken(request(), { signal: controller.signal });
      await until(() => manual.pendingSleeps === 1);
      controller.abort();

      const error = await failureOf(pending);
      expect(error.name).toBe('AbortError');
      expect(manual.pendingSleeps).toBe(0);
      expect(idp.requests).toHaveLength(1);
    });

    it('a caller AbortSignal aborts the request in flight: no failure is reported', async () => {
      const events: UpstreamAttempt[] = [];
      const client = new OAuthClient(clock, { onAttempt: (event) => events.push(event) });
      const controller = new AbortController();
      idp.reply(hang());
      const pending = client.fetchToken(request({ timeoutMs: 10_000 }), {
        signal: controller.signal,
        maxAttempts: 1,
      });
      await until(() => idp.requests.length === 1);
      controller.abort(new Error('shutting down'));

      // The caller's reason, not a timeout or network UpstreamUnavailableError.
      await expect(pending).rejects.toThrow('shutting down');
      expect(events).toEqual([]);
      expect(clock.sleeps).toEqual([]);
    });

    it('an already aborted signal sends nothing', async () => {
      idp.reply(json(200, CAS_ANSWER));
      await expect(
        sut.fetchToken(request(), { signal: AbortSignal.abort() }),
      ).rejects.toMatchObject({ name: 'AbortError' });
      expect(idp.requests).toHaveLength(0);
    });
  });

  describe('bad input fails fast, without a request', () => {
    it.each<[string, Partial<TokenRequest>]>([
      ['a tokenUrl that is not a URL', { tokenUrl: 'not a url' }],
      ['a non-http tokenUrl', { tokenUrl: 'ftp://127.0.0.1/token' }],
      ['a tokenUrl with credentials', { tokenUrl: 'http://u:p@127.0.0.1/token' }],
      ['a zero timeout', { timeoutMs: 0 }],
    ])('%s', async (_case, overrides) => {
      idp.reply(json(200, CAS_ANSWER));
      await expect(sut.fetchToken(request(overrides))).rejects.toThrow(Error);
      expect(idp.requests).toHaveLength(0);
    });

    it.each([0, -1, 1.5, Number.NaN])('maxAttempts %p', async (maxAttempts) => {
      await expect(sut.fetchToken(request(), { maxAttempts })).rejects.toThrow(RangeError);
    });
  });

  describe('observer', () => {
    it('sees every attempt with its outcome, and cannot break the client', async () => {
      const events: UpstreamAttempt[] = [];
      const client = new OAuthClient(clock, {
        onAttempt: (event) => {
          events.push(event);
          throw new Error('metrics are broken');
        },
      });
      idp.reply(json(503, {}), reset(), json(200, CAS_ANSWER));

      await expect(client.fetchToken(request())).resolves.toMatchObject({ accessToken: TOKEN });
      expect(events.map(({ attempt, outcome, status }) => ({ attempt, outcome, status }))).toEqual([
        { attempt: 1, outcome: 'bad_status', status: 503 },
        { attempt: 2, outcome: 'network', status: undefined },
        { attempt: 3, outcome: 'ok', status: 200 },
      ]);
      for (const event of events) {
        expect(event).toMatchObject({ environment: 'uat', clientId: 'api-fake-test.client' });
        expect(event.durationMs).toBeGreaterThanOrEqual(0);
      }
    });
  });
});

describe('UpstreamModule', () => {
  it('provides OAuthClient with the global CLOCK and the optional observer', async () => {
    const clock = new TestClock({ sleeps: 'skip' });
    const events: UpstreamAttempt[] = [];

    @Global()
    @Module({
      providers: [
        { provide: CLOCK, useValue: clock },
        {
          provide: UPSTREAM_OBSERVER,
          useValue: { onAttempt: (e: UpstreamAttempt) => events.push(e) },
        },
      ],
      exports: [CLOCK, UPSTREAM_OBSERVER],
    })
    class TestGlobals {}

    const moduleRef = await Test.createTestingModule({
      imports: [TestGlobals, ScheduleModule.forRoot(), PeriodicModule, UpstreamModule],
    }).compile();
    idp.reply(json(200, CAS_ANSWER));

    const token = await moduleRef.get(OAuthClient).fetchToken(request());
    expect(token.requestedAt).toBe(clock.now());
    expect(events).toHaveLength(1);
    await moduleRef.close();
  });

  it('works without an observer', async () => {
    @Global()
    @Module({
      providers: [{ provide: CLOCK, useValue: new TestClock({ sleeps: 'skip' }) }],
      exports: [CLOCK],
    })
    class ClockOnly {}

    const moduleRef = await Test.createTestingModule({
      imports: [ClockOnly, ScheduleModule.forRoot(), PeriodicModule, UpstreamModule],
    }).compile();
    idp.reply(json(200, CAS_ANSWER));
    await expect(moduleRef.get(OAuthClient).fetchToken(request())).resolves.toBeDefined();
    await moduleRef.close();
  });
});
