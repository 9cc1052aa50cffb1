import fc from 'fast-check';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { CLIENT_ID, ENVIRONMENT_NAME } from '@app/config';
import { MAX_MIN_TTL_SECONDS } from '@app/tokens';
import {
  expectAlive,
  expectError,
  expectErrorShape,
  postLarge,
  rawRequest,
  expectStatus,
} from './harness';
import { httpRequest, type InProcessService, type SimpleResponse, startService } from '../support';

/**
 * Malformed and hostile input on the path, the query, the headers and the body (README
 * "Security and failure behaviour": a 4xx in the error JSON, never a 500; bodies over 16 KiB
 * refused (413)). Property-based with fast-check (fixed seeds, bounded runs) plus hand-picked
 * cases; the process must answer afterwards.
 *
 * Answers the app itself writes must be the `{"error","message"}` JSON of README "API" with
 * no-store. Answers of Node's HTTP parser (a request line or header it cannot parse, headers
 * over 16 KiB) never reach the app: for those only the status is asserted (400 or 431).
 */
const SECRET = 'edge-input-secret-0001';
const KEY = 'edge-input-caller-key-0001-aaaaaaaaaaaa';
const ADMIN_KEY = 'edge-input-admin-key-0002-bbbbbbbbbbbb';
const CONFIGURED = 'ok.client';
const SEED = 20261127;
/**
 * A bad request's statuses: README "API"'s error table (403 is /admin for non-admins), and 431
 * (Node's parser, above).
 */
const DOCUMENTED_4XX = [400, 401, 403, 404, 413, 429, 431];
const MALFORMED = 'The client id is malformed.';
const BAD_MIN_TTL = `minTtl must be a whole number of seconds from 0 to ${MAX_MIN_TTL_SECONDS}.`;
const UNKNOWN_CLIENT = 'No such client is available to this caller.';

/** Characters that tend to break parsers, routers, key builders and log lines. */
const NASTY = [
  '/',
  '\\',
  '.',
  '..',
  '%',
  '%2f',
  '%00',
  '?',
  '#',
  '&',
  '=',
  ';',
  ',',
  ' ',
  '+',
  '*',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  '<',
  '>',
  '|',
  '`',
  '$',
  '~',
  ':',
  '@',
  '!',
  '^',
  '\0',
  '\x01',
  '\x1b',
  '\x7f',
  '\n',
  '\r',
  '\t',
  '\u0085',
  '\u00a0',
  '\u2028',
  '\u202e',
  '\ufeff',
  '\uffff',
  'é',
  'ß',
  'İ',
  '密',
  '😀',
  '\u0301',
  'ａ',
  '١',
];
const ID_CHARS = 'abcxyzABCXYZ0189._~:@+-'.split('');

describe('edge input on path, query, headers and body (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  /** Distinct loopback sources, so failed-auth counting never interferes between runs. */
  let nextSource = 0;
  const freshSource = (): string => {
    nextSource++;
    return `127.${100 + Math.floor(nextSource / 250)}.${nextSource % 250}.1`;
  };

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: CONFIGURED, secret: SECRET },
        { clientId: 'prod-only.client', secret: SECRET },
      ],
    });
    svc = await startService({
      scheduler: false,
      environments: {
        uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 },
        production: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 },
      },
      clients: [
        { clientId: CONFIGURED, environment: 'uat', secret: SECRET },
        { clientId: 'prod-only.client', environment: 'production', secret: SECRET },
      ],
      callers: [
        { name: 'caller', keys: [KEY], clients: ['*'] },
        { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
      ],
    });
    expectStatus(await httpRequest(`${svc.url}/tokens/${CONFIGURED}`, { key: KEY }), 200);
  });

  afterAll(async () => {
    await expectAlive(svc.url);
    expect(svc.logs.lines.filter((l) => l.includes('"unhandled error"'))).toEqual([]);
    await svc?.close();
    await idp?.close();
  });

  /** Never a 500; a 4xx is one listed above, in the error JSON shape. */
  const expectDocumentedAnswer = (res: SimpleResponse): void => {
    expect(res.status).not.toBeGreaterThanOrEqual(500);
    if (res.status === 200) return;
    expect(DOCUMENTED_4XX).toContain(res.status);
    expectErrorShape(res);
    const { error } = res.json();
    const codes: Record<number, string[]> = {
      400: ['invalid_request'],
      401: ['unauthorized'],
      403: ['forbidden'],
      404: ['unknown_client', 'not_found'],
      413: ['invalid_request'],
      429: ['too_many_requests'],
    };
    expect(codes[res.status]).toContain(error);
  };

  describe('path', () => {
    const idArbitrary = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 220 }),
      },
      {
        weight: 4,
        arbitrary: fc.string({ unit: fc.constantFrom(...NASTY, ...ID_CHARS), maxLength: 30 }),
      },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
      { weight: 1, arbitrary: fc.constant(CONFIGURED) },
    );

    it('property: any client id, fully percent-encoded, gets exactly the answer its shape calls for', async () => {
      await fc.assert(
        fc.asyncProperty(idArbitrary, async (id) => {
          let encoded: string;
          try {
            encoded = encodeURIComponent(id);
          } catch {
            return; // a lone surrogate has no UTF-8 form: not a request anyone can send
          }
          const res = await httpRequest(`${svc.url}/tokens/${encoded}`, { key: KEY });
          expectDocumentedAnswer(res);
          if (id === '') expectError(res, 404, 'not_found', 'No such endpoint.');
          else if (!CLIENT_ID.test(id)) expectError(res, 400, 'invalid_request', MALFORMED);
          else if (id === CONFIGURED) expect(res.json().client_id).toBe(CONFIGURED);
          else expectError(res, 404, 'unknown_client', UNKNOWN_CLIENT);
        }),
        { numRuns: 200, seed: SEED },
      );
    });

    it('property: half-encoded paths (literal / % ? # ; left as they are) never give a 500', async () => {
      const raw = fc.string({ unit: fc.constantFrom(...NASTY, ...ID_CHARS), maxLength: 30 });
      await fc.assert(
        fc.asyncProperty(raw, async (s) => {
          // Encode only what node:http refuses to put on a request line.
          const path = [...s]
            .map((ch) => (/^[\x21-\x7e]$/.test(ch) ? ch : encodeURIComponent(ch)))
            .join('')
            .replace(/[\ud800-\udfff]/g, '');
          const res = await httpRequest(`${svc.url}/tokens/${path}`, { key: KEY });
          expectDocumentedAnswer(res);
        }),
        { numRuns: 150, seed: SEED + 1 },
      );
    });

    it.each([
      ['200 characters (longest valid id)', 404, 'unknown_client', `/tokens/${'a'.repeat(200)}`],
      ['201 characters', 400, 'invalid_request', `/tokens/${'a'.repeat(201)}`],
      ['1024 characters', 400, 'invalid_request', `/tokens/${'a'.repeat(1024)}`],
      [
        '1025 characters (past maxParamLength)',
        400,
        'invalid_request',
        `/tokens/${'a'.repeat(1025)}`,
      ],
      ['10000 characters', 400, 'invalid_request', `/tokens/${'a'.repeat(10_000)}`],
      ['..%2f..%2fadmin%2fclients', 400, 'invalid_request', '/tokens/..%2f..%2fadmin%2fclients'],
      ['..%2F (upper case)', 400, 'invalid_request', '/tokens/..%2F..%2Fhealth'],
      ['%2e%2e (a well-formed id: "..")', 404, 'unknown_client', '/tokens/%2e%2e'],
      ['.. literal', 404, 'unknown_client', '/tokens/..'],
      ['%00', 400, 'invalid_request', '/tokens/%00'],
      ['a%00b', 400, 'invalid_request', '/tokens/a%00b'],
      ['%0d%0a header injection', 400, 'invalid_request', '/tokens/a%0d%0aX-Injected:%201'],
      ['encoded slash', 400, 'invalid_request', '/tokens/a%2Fb'],
      ['encoded backslash', 400, 'invalid_request', '/tokens/a%5Cb'],
      ['encoded space', 400, 'invalid_request', '/tokens/%20'],
      ['unicode é', 400, 'invalid_request', '/tokens/%C3%A9'],
      ['emoji', 400, 'invalid_request', '/tokens/%F0%9F%98%80'],
      ['right-to-left override', 400, 'invalid_request', '/tokens/ok%E2%80%AE.client'],
      ['braces (Redis hash tag)', 400, 'invalid_request', '/tokens/%7Buat%7D'],
      ['semicolon parameter', 400, 'invalid_request', `/tokens/${CONFIGURED};jsessionid=1`],
      ['lone %', 400, 'invalid_request', '/tokens/%'],
      ['%zz', 400, 'invalid_request', '/tokens/a%zz'],
      ['truncated UTF-8', 400, 'invalid_request', '/tokens/%E0%A4%A'],
      ['overlong UTF-8 slash', 400, 'invalid_request', '/tokens/%C0%AF'],
      ['empty segment', 404, 'not_found', '/tokens/'],
      ['double slash', 404, 'not_found', '/tokens//'],
      ['trailing slash', 404, 'not_found', `/tokens/${CONFIGURED}/`],
      ['extra segment', 404, 'not_found', `/tokens/${CONFIGURED}/x`],
      ['leading double slash', 404, 'not_found', `//tokens/${CONFIGURED}`],
      ['upper-case route', 404, 'not_found', `/TOKENS/${CONFIGURED}`],
    ])('%s → %i %s', async (_case, status, error, path) => {
      const res = await httpRequest(svc.url + path, { key: KEY });
      expectError(res, status, error);
      expect(res.text).not.toContain('aaaaaaaaaa'); // attacker text is not echoed
      expect(res.headers['x-injected']).toBeUndefined();
    });

    it.each([
      ['a control character', 'GET /tokens/a\x01b HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['DEL', 'GET /tokens/a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['a raw space', 'GET /tokens/a b HTTP/1.1\r\nHost: x\r\n\r\n'],
      ['a NUL', 'GET /tokens/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n'],
      [
        'raw UTF-8 bytes',
        Buffer.from('GET /tokens/\u00e9\u5bc6 HTTP/1.1\r\nHost: x\r\n\r\n', 'utf8'),
      ],
      ['an unknown method', 'FOO /tokens/ok.client HTTP/1.1\r\nHost: x\r\n\r\n'],
      [
        'a bare LF in a header',
        'GET /tokens/ok.client HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\n\r\n',
      ],
      [
        'a folded header',
        'GET /tokens/ok.client HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n',
      ],
      ['a header name with a space', 'GET /tokens/ok.client HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n'],
      [
        'Content-Length and Transfer-Encoding together',
        'POST /admin/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ],
      [
        'two Content-Length',
        'POST /admin/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      ],
      ['HTTP/0.9', 'GET /tokens/ok.client\r\n\r\n'],
    ])(
      'raw request with %s: refused (parser 400 or a documented 4xx), the process answers',
      async (_case, bytes) => {
        const res = await rawRequest(svc.port, bytes);
        // HTTP/0.9-style lines reach the app (no key: 401); everything else stops at the parser.
        expect([400, 401, 404]).toContain(res.status);
        expect(res.raw).not.toMatch(/^HTTP\/1\.1 5/);
        await expectAlive(svc.url);
      },
    );
  });

  describe('query', () => {
    const names = fc.constantFrom(
      'environment',
      'environment',
      'minTtl',
      'minTtl',
      'ENVIRONMENT',
      'min_ttl',
      'environment[]',
      'minTtl[0]',
      '__proto__',
      'constructor',
      'toString',
      'x',
    );
    const values = fc.oneof(
      fc.constantFrom(
        'uat',
        'production',
        'UAT',
        '',
        '0',
        '30',
        '1199',
        '86400',
        '86401',
        '-1',
        '1.5',
        '1e3',
        '0x10',
        ' 30',
        '30 ',
        '٣٠',
        '３０',
        '99999999999999999999',
        '../uat',
        'uat\0',
      ),
      fc.string({ unit: fc.constantFrom(...NASTY, ...ID_CHARS), maxLength: 12 }),
      fc.nat({ max: 200_000 }).map(String),
    );

    /** What vend() answers for this query on the configured client (see token-vending.service). */
    const oracle = (pairs: [string, string][]): { status: number; message?: string | RegExp } => {
      const envs = pairs.filter(([n]) => n === 'environment').map(([, v]) => v);
      const ttls = pairs.filter(([n]) => n === 'minTtl').map(([, v]) => v);
      if (envs.length > 1) return { status: 400, message: 'environment may be given once.' };
      if (ttls.length > 1) return { status: 400, message: 'minTtl may be given once.' };
      const ttl = ttls[0];
      if (ttl !== undefined && (!/^\d{1,6}$/.test(ttl) || Number(ttl) > MAX_MIN_TTL_SECONDS))
        return { status: 400, message: BAD_MIN_TTL };
      const env = envs[0];
      if (env !== undefined) {
        if (!ENVIRONMENT_NAME.test(env) || !['uat', 'production'].includes(env))
          return { status: 400, message: 'Unknown environment.' };
        if (env === 'production') return { status: 404, message: UNKNOWN_CLIENT };
      }
      // The token lives 1200 s: a longer minTtl cannot be met (a refetch is tried when the
      // held token is older than 5 s, and gives another 1200 s token).
      if (ttl !== undefined && Number(ttl) > 1200) return { status: 400, message: /^minTtl \(/ };
      if (ttl !== undefined && Number(ttl) > 1100) return { status: -1 }; // either, by timing
      return { status: 200 };
    };

    it('property: any combination of query parameters gets the documented answer', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(names, values), { maxLength: 4 }), async (pairs) => {
          let query: string;
          try {
            query = pairs
              .map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`)
              .join('&');
          } catch {
            return;
          }
          const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}?${query}`, { key: KEY });
          expectDocumentedAnswer(res);
          const expected = oracle(pairs);
          if (expected.status === -1) {
            expect([200, 400]).toContain(res.status);
          } else if (expected.status === 200) {
            expectStatus(res, 200);
            expect(res.json().client_id).toBe(CONFIGURED);
          } else {
            const error = expected.status === 404 ? 'unknown_client' : 'invalid_request';
            expectError(res, expected.status, error, expected.message);
          }
        }),
        { numRuns: 200, seed: SEED + 2 },
      );
    });

    it.each([
      ['minTtl twice', 400, '?minTtl=1&minTtl=2', 'minTtl may be given once.'],
      ['minTtl as an array', 200, '?minTtl[]=1&minTtl[]=2', undefined],
      ['huge minTtl', 400, '?minTtl=99999999999999999999999999999', BAD_MIN_TTL],
      ['negative minTtl', 400, '?minTtl=-30', BAD_MIN_TTL],
      ['exponent minTtl', 400, '?minTtl=1e2', BAD_MIN_TTL],
      ['hex minTtl', 400, '?minTtl=0x1e', BAD_MIN_TTL],
      ['Arabic-Indic digits', 400, '?minTtl=%D9%A3%D9%A0', BAD_MIN_TTL],
      ['full-width digits', 400, '?minTtl=%EF%BC%93%EF%BC%90', BAD_MIN_TTL],
      ['empty minTtl', 400, '?minTtl=', BAD_MIN_TTL],
      ['minTtl 86401', 400, '?minTtl=86401', BAD_MIN_TTL],
      [
        'minTtl 86400 (longer than the token lives)',
        400,
        '?minTtl=86400',
        /^minTtl \(86400 s\) is longer than this client's tokens live \(\d+ s\)\.$/,
      ],
      ['minTtl 0', 200, '?minTtl=0', undefined],
      [
        'environment twice',
        400,
        '?environment=uat&environment=uat',
        'environment may be given once.',
      ],
      ['environment NUL', 400, '?environment=%00', 'Unknown environment.'],
      ['environment unicode', 400, '?environment=%C3%BCat', 'Unknown environment.'],
      ['environment traversal', 400, '?environment=..%2Fuat', 'Unknown environment.'],
      ['environment empty', 400, '?environment=', 'Unknown environment.'],
      ['environment upper case', 400, '?environment=UAT', 'Unknown environment.'],
      [
        'environment 5000 characters',
        400,
        `?environment=${'u'.repeat(5000)}`,
        'Unknown environment.',
      ],
      ['environment the client is not in', 404, '?environment=production', UNKNOWN_CLIENT],
      [
        'caller key in the query',
        400,
        `?access_token=${KEY}`,
        'Send the caller key in the Authorization header only.',
      ],
      ['__proto__ keys', 200, '?__proto__[environment]=x&constructor[prototype][x]=1', undefined],
    ])('%s → %i', async (_case, status, query, message) => {
      const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}${query}`, { key: KEY });
      if (status === 200) {
        expectStatus(res, 200);
        expect(res.json().client_id).toBe(CONFIGURED);
      } else {
        expectError(res, status, status === 404 ? 'unknown_client' : 'invalid_request', message);
        expect(res.text).not.toContain('uuuuuuuuuu');
      }
    });
  });

  describe('headers', () => {
    it('property: any Authorization value is 200 only for "Bearer <the key>" (scheme in any case), else 401', async () => {
      const scheme = fc.constantFrom(
        'Bearer',
        'bearer',
        'BEARER',
        'bEaReR',
        'Basic',
        'Token',
        'Bearer:',
        '',
      );
      const credential = fc.oneof(
        fc.constant(KEY),
        fc.constant(''),
        fc
          .string({ unit: 'binary-ascii', maxLength: 60 })
          .map((s) => s.replace(/[^\x20-\x7e]/g, '')),
        fc.constant(`${KEY},${KEY}`),
        fc.constant(Buffer.from(KEY).toString('base64')),
      );
      const separator = fc.constantFrom(' ', ' ', '  ', '\t', '');
      await fc.assert(
        fc.asyncProperty(scheme, separator, credential, async (s, sep, cred) => {
          const value = `${s}${sep}${cred}`;
          const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}`, {
            localAddress: freshSource(),
            headers: value === '' ? {} : { authorization: value },
          });
          // Node trims surrounding whitespace; passport-http-bearer splits on one space.
          const parts = value.trim().split(' ');
          const ok =
            parts.length === 2 &&
            /^bearer$/i.test(parts[0]) &&
            parts[1] === KEY &&
            !value.includes(',');
          if (ok) {
            expectStatus(res, 200);
          } else {
            expectError(res, 401, 'unauthorized');
            expect(res.headers['www-authenticate']).toBe('Bearer realm="token-vendor"');
          }
          expect(res.text).not.toContain(KEY.slice(8));
        }),
        { numRuns: 200, seed: SEED + 3 },
      );
    });

    it('property: arbitrary extra headers never change a good answer into a 500', async () => {
      const name = fc.string({
        unit: fc.constantFrom(...'abcxyz-_0189!#$%&*+.^`|~'.split('')),
        minLength: 1,
        maxLength: 20,
      });
      const value = fc
        .string({ unit: 'binary-ascii', maxLength: 200 })
        .map((s) => s.replace(/[^\x20-\x7e\t]/g, ''));
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(name, value), { maxLength: 6 }), async (headers) => {
          const extra: Record<string, string> = {};
          for (const [n, v] of headers) {
            if (
              [
                'authorization',
                'host',
                'content-length',
                'transfer-encoding',
                'connection',
                'expect',
                'upgrade',
              ].includes(n.toLowerCase())
            )
              continue;
            extra[n] = v;
          }
          const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}`, {
            key: KEY,
            headers: extra,
          });
          expectDocumentedAnswer(res);
          expectStatus(res, 200);
        }),
        { numRuns: 100, seed: SEED + 4 },
      );
    });

    it.each([
      ['lower-case bearer', 200, { authorization: `bearer ${KEY}` }],
      ['upper-case BEARER', 200, { authorization: `BEARER ${KEY}` }],
      ['Bearer with an empty key', 401, { authorization: 'Bearer ' }],
      ['Bearer alone', 401, { authorization: 'Bearer' }],
      [
        'Basic scheme with the key',
        401,
        { authorization: `Basic ${Buffer.from(`${KEY}:`).toString('base64')}` },
      ],
      ['Basic scheme, raw key', 401, { authorization: `Basic ${KEY}` }],
      [
        'duplicate Authorization, good one first',
        401,
        { authorization: [`Bearer ${KEY}`, 'Bearer nope'] },
      ],
      [
        'duplicate Authorization, good one last',
        401,
        { authorization: ['Bearer nope', `Bearer ${KEY}`] },
      ],
      ['two keys in one header', 401, { authorization: `Bearer ${KEY}, Bearer ${KEY}` }],
      ['a 15 KiB key', 401, { authorization: `Bearer ${'k'.repeat(15 * 1024)}` }],
      [
        'a weird X-Request-Id',
        200,
        { authorization: `Bearer ${KEY}`, 'x-request-id': `../${'r'.repeat(100)}` },
      ],
    ])('%s → %i', async (_case, status, headers) => {
      const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}`, {
        localAddress: freshSource(),
        headers,
      });
      if (status === 200) expectStatus(res, 200);
      else expectError(res, status, 'unauthorized');
      // Every answer names its request; a caller's id that is not a short plain token is
      // replaced by a fresh UUID, never echoed.
      expect(res.headers['x-request-id']).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    });

    it.each([
      ['one 17 KiB header', { 'x-big': 'a'.repeat(17 * 1024) }],
      ['a 17 KiB Authorization', { authorization: `Bearer ${'a'.repeat(17 * 1024)}` }],
      [
        'many small headers over 16 KiB',
        Object.fromEntries(Array.from({ length: 600 }, (_v, i) => [`x-h${i}`, 'v'.repeat(30)])),
      ],
    ])('headers over 16 KiB (%s) → 431, never a 500', async (_case, headers) => {
      const res = await httpRequest(`${svc.url}/tokens/${CONFIGURED}`, {
        key: KEY,
        headers,
        localAddress: freshSource(),
      });
      expect([400, 431]).toContain(res.status);
      await expectAlive(svc.url);
    });
  });

  describe('body', () => {
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };

    it('POST /admin/reload with a 1 MiB body → 413 (Content-Length given)', async () => {
      const res = await postLarge(
        svc.url,
        '/admin/reload',
        { ...admin, 'content-type': 'application/json' },
        Buffer.alloc(1024 * 1024, 'a'),
      );
      expectStatus(res, 413);
      expect(JSON.parse(res.text)).toEqual({
        error: 'invalid_request',
        message: 'The request is too large.',
      });
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('POST /admin/reload with a 1 MiB chunked body → 413', async () => {
      const res = await postLarge(
        svc.url,
        '/admin/reload',
        { ...admin, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        Buffer.from(`{"pad":"${'a'.repeat(1024 * 1024)}"}`),
      );
      expectStatus(res, 413);
      expect(JSON.parse(res.text)).toEqual({
        error: 'invalid_request',
        message: 'The request is too large.',
      });
    });

    it('POST /admin/reload with 16 KiB + 1 byte → 413; with just under 16 KiB of JSON → 200', async () => {
      const over = `{"pad":"${'a'.repeat(16 * 1024 - 9)}"}`;
      expect(Buffer.byteLength(over)).toBe(16 * 1024 + 1);
      const big = await httpRequest(`${svc.url}/admin/reload`, {
        key: ADMIN_KEY,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: over,
      });
      expectError(big, 413, 'invalid_request', 'The request is too large.');
      const under = `{"pad":"${'a'.repeat(16 * 1024 - 10)}"}`;
      const ok = await httpRequest(`${svc.url}/admin/reload`, {
        key: ADMIN_KEY,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: under,
      });
      expectStatus(ok, 200);
    });

    it.each([
      ['malformed JSON', 'application/json', '{"a":', 400],
      ['prototype poisoning', 'application/json', '{"__proto__":{"admin":true}}', 400],
      [
        'constructor poisoning',
        'application/json',
        '{"constructor":{"prototype":{"admin":true}}}',
        400,
      ],
      ['the caller key in the body', 'application/json', `{"access_token":"${ADMIN_KEY}"}`, 400],
      ['a JSON string', 'application/json', '"x"', 200],
      ['deeply nested JSON', 'application/json', `${'['.repeat(5000)}${']'.repeat(5000)}`, 200],
      ['text/plain', 'text/plain', 'hello', 200],
    ])('POST /admin/reload with %s → %i', async (_case, contentType, body, status) => {
      const res = await httpRequest(`${svc.url}/admin/reload`, {
        key: ADMIN_KEY,
        method: 'POST',
        headers: { 'content-type': contentType },
        body,
      });
      if (status === 200) expectStatus(res, 200);
      else expectError(res, status, 'invalid_request');
      expect(res.text).not.toContain(ADMIN_KEY);
    });

    it('property: any method, content type and body on the API never gives a 500', async () => {
      const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
      const path = fc.constantFrom(
        `/tokens/${CONFIGURED}`,
        '/admin/reload',
        '/admin/clients',
        `/admin/clients/${CONFIGURED}/refresh`,
        '/health/live',
        '/metrics',
        '/',
      );
      const contentType = fc.constantFrom(
        'application/json',
        'application/x-www-form-urlencoded',
        'text/plain',
        'application/json; charset=utf-16',
        'multipart/form-data; boundary=x',
        '',
        'application/json\u00e9'.replace(/[^\x20-\x7e]/g, ''),
      );
      const body = fc.oneof(
        fc.constant(''),
        fc.json({ maxDepth: 3 }),
        fc.string({ unit: 'binary-ascii', maxLength: 200 }),
      );
      const key = fc.constantFrom(KEY, ADMIN_KEY);
      await fc.assert(
        fc.asyncProperty(method, path, contentType, body, key, async (m, p, ct, b, k) => {
          const headers: Record<string, string> = ct ? { 'content-type': ct } : {};
          const withBody = m !== 'GET' && m !== 'HEAD';
          // Framed explicitly: node:http sends DELETE/OPTIONS bodies unframed (a second request).
          if (withBody) headers['content-length'] = String(Buffer.byteLength(b));
          const res = await httpRequest(svc.url + p, {
            key: k,
            method: m,
            headers,
            ...(withBody ? { body: b } : {}),
            localAddress: freshSource(),
          });
          expect(res.status).toBeLessThan(500);
          // 415 is Fastify's answer to a content type it has no parser for (see the report).
          if (res.status !== 415 && m !== 'HEAD') expectDocumentedAnswer(res);
          if (res.status === 415) expectError(res, 415, 'invalid_request');
        }),
        { numRuns: 150, seed: SEED + 5 },
      );
    });
  });
});
