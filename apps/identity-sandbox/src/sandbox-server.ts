import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { ClientRegistry } from './client-registry';
import { CONTROL_PREFIX, handleControlRequest, type SandboxControls } from './control-api';
import { DEMO_CLIENTS } from './demo-clients';
import {
  DISCOVERY_PATH,
  discoveryDocument,
  JWKS_PATH,
  MTLS_TOKEN_PATH,
  OAUTH_METADATA_PATH,
  SANDBOX_AUTH_METHODS,
  TOKEN_PATH,
} from './discovery';
import { FaultInjector } from './fault-injection';
import { sendJson } from './http-io';
import { JwtSigner } from './jwt-signer';
import { CancellableSleeper, type SandboxContext } from './sandbox-context';
import { SandboxInputError } from './sandbox-input-error';
import { SandboxStatsRecorder } from './sandbox-stats';
import { validateExpiresIn, validatePort } from './settings-validation';
import { handleTokenRequest } from './token-endpoint';
import type { RunningSandbox, SandboxOptions } from './types';
import {
  WORKLOAD_DISCOVERY_PATH,
  WORKLOAD_ISSUER_PATH,
  WORKLOAD_JWKS_PATH,
  WorkloadIssuer,
} from './workload-issuer';

export const DEFAULT_EXPIRES_IN = 1200;
export const DEFAULT_AUDIENCE = 'cas-api';
export const DEFAULT_HOST = '127.0.0.1';

/** Starts a sandbox IdP; resolves once it listens. */
export async function startIdentitySandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  // Validate everything before the (comparatively slow) key generation.
  const host = options.host ?? DEFAULT_HOST;
  const port = validatePort(options.port ?? 0);
  const audience = nonEmpty(options.audience ?? DEFAULT_AUDIENCE, 'audience');
  if (options.issuer !== undefined) nonEmpty(options.issuer, 'issuer');
  const expiresIn = validateExpiresIn(options.expiresIn ?? DEFAULT_EXPIRES_IN);
  const clients = new ClientRegistry(options.clients ?? DEMO_CLIENTS);
  const sleeper = new CancellableSleeper();
  const ctx: SandboxContext = {
    signer: await JwtSigner.create(),
    workloads: new WorkloadIssuer(),
    clients,
    faults: new FaultInjector(),
    stats: new SandboxStatsRecorder(),
    // url and issuer are known once the port is.
    settings: {
      url: '',
      issuer: '',
      audience,
      expiresIn,
      authMethods: validateAuthMethods(options.authMethods),
      openidConfiguration: options.openidConfiguration ?? true,
    },
    log: options.log ?? (() => undefined),
    sleep: (ms) => sleeper.sleep(ms),
  };

  const controls: SandboxControls = {
    stats: () => ctx.stats.snapshot(),
    requests: () => ctx.stats.requests(),
    setFault: (fault) => ctx.faults.set(fault),
    clearFault: () => ctx.faults.clear(),
    setExpiresIn: (seconds) => {
      ctx.settings.expiresIn = validateExpiresIn(seconds);
    },
    resetStats: () => ctx.stats.reset(),
    setClient: (clientId, secret, scopes) => ctx.clients.setSecret(clientId, secret, scopes),
    // Getters: the URL is known once the server listens, and the kid changes on rotation.
    workloadIssuer: {
      get issuer() {
        return `${ctx.settings.url}${WORKLOAD_ISSUER_PATH}`;
      },
      get jwksUri() {
        return `${ctx.settings.url}${WORKLOAD_JWKS_PATH}`;
      },
      kid: () => ctx.workloads.kid(),
      mint: (request) => ctx.workloads.mint(request, `${ctx.settings.url}${WORKLOAD_ISSUER_PATH}`),
      rotateKey: (keepPrevious) => ctx.workloads.rotateKey(keepPrevious),
      setAvailable: (available) => {
        ctx.workloads.available = available;
      },
      jwksRequests: () => [...ctx.workloads.jwksRequests],
    },
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(ctx, controls, req, res).catch((error: unknown) => {
      // A bug, not a client mistake: answer 500 rather than leave the client hanging.
      process.stderr.write(
        `${JSON.stringify({ level: 'error', msg: 'identity sandbox handler failed', error: String(error) })}\n`,
      );
      sendJson(req, res, 500, { error: 'server_error' });
    });
  };
  const server: Server = options.tls
    ? createHttpsServer(
        {
          key: options.tls.key,
          cert: options.tls.cert,
          // RFC 8705: ask for a client certificate, never require one (secret clients too).
          requestCert: true,
          rejectUnauthorized: false,
          ...(options.tls.clientCa !== undefined ? { ca: options.tls.clientCa } : {}),
        },
        handler,
      )
    : createServer(handler);
  const scheme = options.tls ? 'https' : 'http';
  // Tracked so close() can end keep-alive and deliberately hung ('timeout') connections at once.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await listen(server, port, host);
  const { port: actualPort } = server.address() as AddressInfo;
  ctx.settings.url = `${scheme}://${urlHost(host)}:${actualPort}`;
  ctx.settings.issuer = options.issuer ?? ctx.settings.url;

  let closing: Promise<void> | undefined;
  return {
    url: ctx.settings.url,
    tokenUrl: `${ctx.settings.url}${TOKEN_PATH}`,
    ...controls,
    setClientSecret: (clientId, secret) => ctx.clients.setSecret(clientId, secret),
    workloadIssuer: controls.workloadIssuer,
    setClientKeys: (clientId, publicKeys) => ctx.clients.setPublicKeys(clientId, publicKeys),
    setClientCertificates: (clientId, certificates) =>
      ctx.clients.setCertificates(clientId, certificates),
    setClientAssertionCertificates: (clientId, certificates) =>
      ctx.clients.setAssertionCertificates(clientId, certificates),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        sleeper.cancelAll();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

async function route(
  ctx: SandboxContext,
  controls: SandboxControls,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://sandbox').pathname;
  const method = req.method ?? 'GET';

  if (path === TOKEN_PATH || (path === MTLS_TOKEN_PATH && ctx.settings.url.startsWith('https:'))) {
    if (method === 'POST') return handleTokenRequest(ctx, req, res);
    return sendJson(req, res, 405, { error: 'method_not_allowed' }, { Allow: 'POST' });
  }
  const discovery =
    (path === DISCOVERY_PATH && ctx.settings.openidConfiguration) || path === OAUTH_METADATA_PATH;
  if (discovery || path === JWKS_PATH || path === '/health') {
    if (method !== 'GET' && method !== 'HEAD') {
      return sendJson(req, res, 405, { error: 'method_not_allowed' }, { Allow: 'GET, HEAD' });
    }
    if (discovery) return sendJson(req, res, 200, discoveryDocument(ctx, req));
    if (path === JWKS_PATH) return sendJson(req, res, 200, ctx.signer.jwks());
    return sendJson(req, res, 200, { status: 'ok' });
  }
  if (path === WORKLOAD_DISCOVERY_PATH || path === WORKLOAD_JWKS_PATH) {
    if (method !== 'GET' && method !== 'HEAD') {
      return sendJson(req, res, 405, { error: 'method_not_allowed' }, { Allow: 'GET, HEAD' });
    }
    if (path === WORKLOAD_JWKS_PATH) ctx.workloads.jwksRequests.push(Date.now());
    if (!ctx.workloads.available) return sendJson(req, res, 503, { error: 'unavailable' });
    if (path === WORKLOAD_JWKS_PATH) return sendJson(req, res, 200, await ctx.workloads.jwks());
    return sendJson(req, res, 200, {
      issuer: `${ctx.settings.url}${WORKLOAD_ISSUER_PATH}`,
      jwks_uri: `${ctx.settings.url}${WORKLOAD_JWKS_PATH}`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
  }
  if (path.startsWith(`${CONTROL_PREFIX}/`)) {
    if (await handleControlRequest(ctx, controls, req, res, path)) return;
  }
  sendJson(req, res, 404, { error: 'not_found' });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A host usable in a URL: wildcard addresses become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function validateAuthMethods(methods: readonly string[] | undefined): string[] {
  if (methods === undefined) return [...SANDBOX_AUTH_METHODS];
  if (methods.length === 0 || methods.some((m) => !SANDBOX_AUTH_METHODS.includes(m))) {
    throw new SandboxInputError(`authMethods must be some of ${SANDBOX_AUTH_METHODS.join(', ')}`);
  }
  return [...methods];
}

function nonEmpty(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new SandboxInputError(`${name} must be a non-empty string`);
  }
  return value;
}
