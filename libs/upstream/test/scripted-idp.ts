import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  form: Record<string, string>;
}

/** What the IdP does with one request. */
export type Reply = (res: ServerResponse, req: IncomingMessage) => void;

/**
 * A tiny token endpoint on 127.0.0.1 with a script: the n-th request gets the n-th reply.
 * Real sockets, so the client's HTTP, gzip, timeout and reset handling are really exercised.
 */
export class ScriptedIdp {
  readonly requests: RecordedRequest[] = [];
  private script: Reply[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ScriptedIdp> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const idp = new ScriptedIdp(server, `http://127.0.0.1:${port}/connect/token`);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => idp.handle(req, res));
    return idp;
  }

  /** Replaces the script; requests beyond it get a 599 so a test sees the surprise. */
  reply(...replies: Reply[]): this {
    this.script = replies;
    this.requests.length = 0;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      this.requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        form: Object.fromEntries(new URLSearchParams(body)),
      });
      const next =
        this.script[this.requests.length - 1] ?? json(599, { error: 'script_exhausted' });
      next(res, req);
    });
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return text(status, JSON.stringify(body), { 'Content-Type': 'application/json', ...headers });
}

export function text(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return (res) => {
    res.writeHead(status, headers);
    res.end(body);
  };
}

export function gzipJson(status: number, body: unknown): Reply {
  return (res) => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
    res.end(gzipSync(JSON.stringify(body)));
  };
}

/** Drops the connection without answering (ECONNRESET / "other side closed" for the client). */
export function reset(): Reply {
  return (_res, req) => req.socket.destroy();
}

/** Never answers; the socket is freed when the server closes. */
export function hang(): Reply {
  return () => undefined;
}

/** Runs `effect` (e.g. moving a test clock) and then answers with `reply`. */
export function after(effect: () => unknown, reply: Reply): Reply {
  return (res, req) => {
    void Promise.resolve(effect()).then(() => reply(res, req));
  };
}
