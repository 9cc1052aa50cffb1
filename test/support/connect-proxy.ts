import { createServer, connect, type Server, type Socket } from 'node:net';
import { listenOnLoopback } from './http';

/**
 * A forward proxy on loopback that speaks only CONNECT (what a client uses for https through
 * a proxy) and records every tunnel it opened, so a test can see that IdP calls went through it.
 */
export class ConnectProxy {
  /** `host:port` of every CONNECT, in order. */
  readonly tunnels: string[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<ConnectProxy> {
    const server = createServer();
    const proxy = new ConnectProxy(server, `http://127.0.0.1:${await listenOnLoopback(server)}`);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  private accept(client: Socket): void {
    this.track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      client.off('data', onData);
      const match = /^CONNECT ([^\s:]+|\[[^\]]+\]):(\d+) HTTP\/1\.[01]\r\n/.exec(
        head.toString('latin1'),
      );
      if (!match) {
        client.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\n\r\n');
        return;
      }
      const [, host, port] = match as unknown as [string, string, string];
      this.tunnels.push(`${host}:${port}`);
      const upstream = connect(Number(port), host.replace(/^\[|\]$/g, ''), () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const rest = head.subarray(end + 4);
        if (rest.length > 0) upstream.write(rest);
        client.pipe(upstream).pipe(client);
      });
      this.track(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    };
    client.on('data', onData);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
