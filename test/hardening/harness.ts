import { createServer, request as httpRaw, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Clock } from '@app/clock';
import type { HttpServerTimeouts } from '@app/token-vendor';
import type { SimpleResponse } from '../support/http';
import {
  secretPathOf,
  startTestApp,
  type CapturedLogs,
  type TestCaller,
  type TestClient,
} from '../support/test-app';

/**
 * Shared pieces of the hardening suites. The service is built exactly as main.ts builds it
 * (the same loader and app factory as test/support/test-app.ts), with two extras the
 * hardening suites need: the encryption key is chosen by the test (so it can be a canary),
 * and the Redis URL can point at a throwaway redis-server.
 */

export interface VendorOptions {
  environments: Record<string, { tokenUrl: string; timeoutMs?: number }>;
  clients: TestClient[];
  callers: TestCaller[];
  refresh?: { ratio?: number; minTtlSeconds?: number };
  /** A Redis URL (shared TEST_REDIS_URL or a throwaway server); memory store when absent. */
  redisUrl?: string;
  /** `kid:base64` list; a fresh random key when absent. */
  encryptionKeys?: string;
  clock?: Clock;
  logLevel?: string;
  scheduler?: boolean;
  /** More environment variables (TRUSTED_PROXIES, OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
  env?: Record<string, string>;
  httpTimeouts?: Partial<HttpServerTimeouts>;
}

export interface Vendor {
  url: string;
  /** The Prometheus listener (`METRICS_PORT`): `${metricsUrl}/metrics`. */
  metricsUrl: string;
  port: number;
  app: NestFastifyApplication;
  logs: CapturedLogs;
  dir: string;
  configPath: string;
  keyPrefix: string;
  encryptionKeys: string;
  /** The secret file of a client (for rotations). */
  secretPath(client: { clientId: string; environment: string }): string;
  close(): Promise<void>;
}

export function randomEncryptionKeys(): string {
  return `hk1:${randomBytes(32).toString('base64')}`;
}

/**
 * The service as startTestApp builds it (same config writer, loader and app factory), with
 * what the hardening suites need beside: the port, the encryption keys, secret file paths.
 */
export async function startVendor(options: VendorOptions): Promise<Vendor> {
  const { redisUrl, ...rest } = options;
  const encryptionKeys = options.encryptionKeys ?? randomEncryptionKeys();
  const svc = await startTestApp({
    ...rest,
    redis: redisUrl ?? false,
    keyPrefix: `tv-hardening-${randomUUID()}:`,
    encryptionKeys,
  });
  return {
    ...svc,
    port: Number(new URL(svc.url).port),
    encryptionKeys,
    secretPath: (c) => secretPathOf(svc.dir, c),
  };
}

export function requireTestRedisUrl(): string {
  const url = process.env.TEST_REDIS_URL;
  if (!url) throw new Error('TEST_REDIS_URL is not set: run through jest (globalSetup)');
  return url;
}

export interface CallOptions {
  key?: string;
  method?: string;
  source?: string;
  headers?: Record<string, string | string[]>;
  body?: string;
}

/**
 * One HTTP request to the service; `key` becomes `Authorization: Bearer <key>` unless the
 * headers carry their own. The path is sent verbatim (no WHATWG URL normalisation, which would
 * turn `/tokens/..` or `/tokens/%2e%2e` into `/`), and the request fails after `timeoutMs`
 * instead of hanging the test.
 */
export function call(
  base: string,
  path: string,
  options: CallOptions & { timeoutMs?: number } = {},
): Promise<SimpleResponse> {
  const headers: Record<string, string | string[]> = { ...options.headers };
  const hasAuthorization = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
  if (options.key !== undefined && !hasAuthorization)
    headers.authorization = `Bearer ${options.key}`;
  const { hostname, port } = new URL(base);
  const method = options.method ?? 'GET';
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const req = httpRaw(
      { hostname, port, path, method, headers, localAddress: options.source ?? '127.0.0.1' },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path.slice(0, 100)}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** The contract's error shape, whatever the code: JSON, exactly two strings, no-store. */
export function expectErrorShape(res: SimpleResponse): void {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  let body: unknown;
  expect(() => (body = JSON.parse(res.text))).not.toThrow();
  expect(body).toEqual({ error: expect.any(String), message: expect.any(String) });
  expect(res.headers['cache-control']).toBe('no-store');
}

/** The contract's error answer: JSON, exactly `{error, message}`, no-store. */
export function expectError(
  res: SimpleResponse,
  status: number,
  error: string,
  message?: string | RegExp,
): void {
  expect({ status: res.status, text: res.text }).toEqual({ status, text: expect.any(String) });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(body.error).toBe(error);
  expect(typeof body.message).toBe('string');
  if (typeof message === 'string') expect(body.message).toBe(message);
  else if (message) expect(body.message).toMatch(message);
  expect(res.headers['cache-control']).toBe('no-store');
}

export async function expectAlive(base: string): Promise<void> {
  const live = await call(base, '/health/live');
  expectStatus(live, 200);
  const ready = await call(base, '/health/ready');
  expectStatus(ready, 200);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface RawResponse {
  /** 0 when the server closed without answering. */
  status: number;
  head: string;
  body: string;
  /** Everything received, bytes as latin1. */
  raw: string;
}

/**
 * Sends bytes as they are (no client-side validation, unlike node:http) and reads the first
 * answer. For request lines and headers that a well-behaved client refuses to produce.
 */
export function rawRequest(
  port: number,
  bytes: string | Buffer,
  options: { timeoutMs?: number; localAddress?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1')));
    };
    const timer = setTimeout(finish, options.timeoutMs ?? 3000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // Stop at the end of the first complete answer (Content-Length framed or not).
      const parsed = parseRaw(Buffer.concat(chunks).toString('latin1'));
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(parsed.head)?.[1];
      if (
        parsed.status &&
        length !== undefined &&
        Buffer.byteLength(parsed.body, 'latin1') >= +length
      )
        finish();
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', (e) => (chunks.length > 0 ? finish() : settled || reject(e)));
  });
}

function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const body = end === -1 ? '' : raw.slice(end + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  return { status, head, body, raw };
}

/**
 * A POST whose body may be refused before it is fully sent: the answer is collected even when
 * the server closes the connection mid-upload (EPIPE / ECONNRESET on our side).
 */
export function postLarge(
  base: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRaw(`${base}${path}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      // The answer may still arrive after a write error; give it a moment.
      if (e.code === 'EPIPE' || e.code === 'ECONNRESET') return;
      reject(e);
    });
    req.write(body);
    req.end();
  });
}

/**
 * A recording reverse proxy in front of the sandbox's token endpoint: every token the IdP
 * hands out passes through here, so the secret scan knows all of them (including ones the
 * service received but never served).
 */
export interface RecordingProxy {
  tokenUrl: string;
  tokens: Set<string>;
  /** The headers of every request that reached the proxy, in order. */
  requestHeaders: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const tokens = new Set<string>();
  const requestHeaders: IncomingHttpHeaders[] = [];
  const targetUrl = new URL(target);
  const server: Server = createServer((req, res) => {
    requestHeaders.push(req.headers);
    const upstream = httpRaw(
      {
        host: targetUrl.hostname,
        port: targetUrl.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'accept-encoding': 'identity' },
      },
      (up) => {
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            const token = (JSON.parse(text) as { access_token?: unknown }).access_token;
            if (typeof token === 'string') tokens.add(token);
          } catch {
            // not JSON: nothing to record
          }
          const headers = { ...up.headers };
          delete headers['content-length'];
          delete headers['transfer-encoding'];
          res.writeHead(up.statusCode ?? 502, headers);
          res.end(text);
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    tokenUrl: `http://127.0.0.1:${port}${targetUrl.pathname}`,
    tokens,
    requestHeaders,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The status, with the body in the failure message when it is not the expected one. */
export function expectStatus(res: { status: number; text: string }, status: number): void {
  if (res.status !== status) {
    expect({ status: res.status, body: res.text.slice(0, 500) }).toEqual({ status, body: '(any)' });
  }
}
