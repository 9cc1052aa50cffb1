import { createServer, request as httpRaw, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { closeServer, httpRequest, listenOnLoopback, type SimpleResponse } from '../support';

/**
 * Assertions and raw-socket tools of the hardening suites; they start the service with
 * test/support's startService like every suite.
 */

/** The error shape of README "API", whatever the code: JSON, exactly two strings, no-store. */
export function expectErrorShape(res: SimpleResponse): void {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  let body: unknown;
  expect(() => (body = JSON.parse(res.text))).not.toThrow();
  expect(body).toEqual({ error: expect.any(String), message: expect.any(String) });
  expect(res.headers['cache-control']).toBe('no-store');
}

/** The error answer of README "API": JSON, exactly `{error, message}`, no-store. */
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
  const live = await httpRequest(`${base}/health/live`);
  expectStatus(live, 200);
  const ready = await httpRequest(`${base}/health/ready`);
  expectStatus(ready, 200);
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
  const port = await listenOnLoopback(server);
  return {
    tokenUrl: `http://127.0.0.1:${port}${targetUrl.pathname}`,
    tokens,
    requestHeaders,
    close: () => closeServer(server),
  };
}

/** The status, with the body in the failure message when it is not the expected one. */
export function expectStatus(res: { status: number; text: string }, status: number): void {
  if (res.status !== status) {
    expect({ status: res.status, body: res.text.slice(0, 500) }).toEqual({ status, body: '(any)' });
  }
}
