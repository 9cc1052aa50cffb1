import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MetricsService } from './metrics.service';
import { ROOT_LOGGER } from './observability.module';

/** A scrape is answered within milliseconds; a client that takes longer to send one is cut off. */
export const METRICS_HEADERS_TIMEOUT_MS = 10_000;

/**
 * `/metrics` on a port of its own (`METRICS_PORT`, README "Logs and metrics"): the API port
 * never lists the configured clients, so a caller cannot learn them there; the metrics port is
 * for Prometheus on the pod network (the chart's NetworkPolicy). A plain `node:http` server:
 * one route, no framework.
 */
@Injectable()
export class MetricsServer implements OnApplicationShutdown {
  private server?: Server;

  constructor(
    private readonly metrics: MetricsService,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /** Starts listening; rejects (and the start fails) when the port cannot be bound. */
  async listen(port: number, host: string): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.answer(req, res));
    server.headersTimeout = METRICS_HEADERS_TIMEOUT_MS;
    server.requestTimeout = METRICS_HEADERS_TIMEOUT_MS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.logger.info({ context: 'MetricsServer', port: address.port }, 'metrics listening');
    return address;
  }

  /** The bound address, once listening. */
  address(): AddressInfo | undefined {
    return (this.server?.address() as AddressInfo | null) ?? undefined;
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Prometheus keeps its connection alive between scrapes: it must not hold the exit open.
    server.closeAllConnections();
    await closed;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return plain(res, 404, 'Not found: metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return plain(res, 405, 'Method not allowed\n');
    }
    try {
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, {
        'Content-Type': this.metrics.registry.contentType,
        'Cache-Control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    } catch (e) {
      this.logger.error(
        { context: 'MetricsServer', err: { message: (e as Error).message } },
        'metrics collection failed',
      );
      plain(res, 500, 'Metrics collection failed\n');
    }
  }
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end(text);
}
