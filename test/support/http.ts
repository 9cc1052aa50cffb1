import { request, type Server } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';

export interface SimpleResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies are asserted field by field
}

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  /** Sent as `Authorization: Bearer <key>` unless `headers` carry their own authorization. */
  key?: string;
  /** The source address (127.0.0.x), so tests can play several callers' machines against one server. */
  localAddress?: string;
  body?: string;
  /** The request fails after this long instead of hanging the test (default 30 s). */
  timeoutMs?: number;
}

/**
 * The tests' one HTTP client: one request to `url`, its whole answer. The path is sent verbatim
 * (no WHATWG URL normalisation, which would turn `/tokens/..` or `/tokens/%2e%2e` into `/`).
 */
export function httpRequest(
  url: string,
  options: HttpRequestOptions = {},
): Promise<SimpleResponse> {
  const origin = /^(https?:\/\/[^/?#]+)(.*)$/.exec(url);
  if (!origin) throw new Error(`not an absolute http URL: ${url}`);
  const { hostname, port } = new URL(origin[1]);
  const path = origin[2] || '/';
  const headers: Record<string, string | string[]> = { ...options.headers };
  const hasAuthorization = Object.keys(headers).some((h) => h.toLowerCase() === 'authorization');
  if (options.key !== undefined && !hasAuthorization)
    headers.authorization = `Bearer ${options.key}`;
  const method = options.method ?? 'GET';
  const timeoutMs = options.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname, port, path, method, headers, localAddress: options.localAddress },
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

/** Listens on a free loopback port (127.0.0.1:0) and resolves with it: the tests' servers. */
export async function listenOnLoopback(server: NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Closes a test's HTTP server at once, open (keep-alive) connections included. */
export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
