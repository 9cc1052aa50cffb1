import { CLOCK, backoffDelayMs, type Clock } from '@app/clock';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import {
  ConfigError,
  ConfigService,
  insecureHttp,
  type ClientConfig,
  type EnvironmentConfig,
  type ServiceConfig,
} from '@app/config';
import { UpstreamUnavailableError } from '@app/errors';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { fetch } from 'undici';
import { IdpDispatchers } from './idp-dispatchers';
import { readBodyText } from './response-body';
import { RETRY_POLICY } from './retry-policy';

/** How often a discovered document is read again (keys and endpoints move rarely). */
export const DISCOVERY_REFRESH_MS = 60 * 60_000;
/** Largest metadata document read (Entra ID's is about 2 KiB; Keycloak's about 8 KiB). */
const MAX_DOCUMENT_BYTES = 256 * 1024;
/** RFC 8414 §2: the default when a document lists no methods. */
const DEFAULT_AUTH_METHODS = ['client_secret_basic'];

/** What the service uses of an IdP's metadata (OpenID Connect Discovery §3, RFC 8414 §2). */
export interface DiscoveredIdp {
  readonly tokenEndpoint: string;
  /** RFC 8705 §5: `mtls_endpoint_aliases.token_endpoint`, used by certificate clients. */
  readonly mtlsTokenEndpoint?: string;
  readonly authMethods: readonly string[];
  /** Undefined when the document lists none. */
  readonly signingAlgs?: readonly string[];
  readonly fetchedAt: number;
}

/** The document was read but cannot be used: each problem names the configuration field. */
class DiscoveryRefused extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/**
 * Discovery for environments configured with `issuer:` instead of `tokenUrl:` (README
 * "Identity providers"). At start every issuer's metadata is read: `issuer` must match, and a
 * client whose authMethod (or signingAlg) the IdP does not list fails the start, naming the
 * field. An IdP unreachable at start does not stop the service: discovery is retried with
 * backoff in the background (and at once whenever a token is needed), and the clients of that
 * environment answer 503 until it succeeds. Documents are read again every hour; a failed
 * re-read keeps the last good one.
 */
@Injectable()
export class IdpDiscovery implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('IdpDiscovery');
  private readonly dispatchers = new IdpDispatchers();
  /** By `name + issuer`, so a reload that changes an issuer never sees the old document. */
  private readonly documents = new Map<string, DiscoveredIdp>();
  private readonly inFlight = new Map<string, Promise<DiscoveredIdp>>();
  private readonly stopping = new AbortController();
  private readonly refresher: PeriodicTask;

  constructor(
    @Inject(CLOCK) private readonly clock: Clock,
    tasks: PeriodicTasks,
    @Optional() private readonly config?: ConfigService,
  ) {
    this.refresher = tasks.create('IdP discovery refresh', DISCOVERY_REFRESH_MS, () =>
      this.refreshAll(),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config) return;
    const problems: string[] = [];
    await Promise.all(
      this.issuerEnvironments().map(async (environment) => {
        try {
          const found = await this.discover(environment);
          problems.push(...clientProblems(environment, found, this.config?.service.clients ?? []));
        } catch (e) {
          if (e instanceof DiscoveryRefused) return void problems.push(...e.problems);
          this.logger.warn({
            msg: 'IdP discovery failed at start; retrying in the background',
            environment: environment.name,
            error: (e as Error).message,
          });
          void this.retryUntilFound(environment);
        }
      }),
    );
    if (problems.length > 0) throw new ConfigError(this.config.runtime.configPath, problems);
    this.refresher.start();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping.abort(new Error('shutting down'));
    this.refresher.stop();
    await this.dispatchers.close();
  }

  /**
   * The token endpoint of a discovery environment: the known one, else discovered now.
   * Throws UpstreamUnavailableError (503 to callers) while the IdP cannot be discovered.
   */
  async tokenEndpointOf(environmentName: string, mtls = false): Promise<string> {
    const environment = this.config?.service.environments.get(environmentName);
    if (!environment?.issuer) {
      throw new UpstreamUnavailableError('bad_status', 'the client is being reconfigured');
    }
    // Checked at every request against the environment as configured now: a reload that turns
    // allowInsecureHttp off must stop a document discovered while it was on (README
    // "Identity providers").
    const endpointOf = (found: DiscoveredIdp): string => {
      const endpoint = (mtls ? found.mtlsTokenEndpoint : undefined) ?? found.tokenEndpoint;
      if (insecureHttp(endpoint, environment.allowInsecureHttp)) {
        throw new UpstreamUnavailableError(
          'bad_answer',
          `the discovered token endpoint of environment "${environment.name}" is http:// beyond loopback and allowInsecureHttp is off`,
        );
      }
      return endpoint;
    };
    const known = this.documents.get(keyOf(environment));
    if (known) return endpointOf(known);
    let found: DiscoveredIdp;
    try {
      found = await this.discover(environment);
    } catch (e) {
      const why = e instanceof DiscoveryRefused ? 'is not usable' : 'could not be read';
      throw new UpstreamUnavailableError(
        e instanceof DiscoveryRefused ? 'bad_answer' : 'network',
        `the discovery document of environment "${environment.name}" ${why}`,
      );
    }
    return endpointOf(found);
  }

  /**
   * What a configuration about to replace the running one (a reload) asks of the IdPs already
   * discovered: each client of an environment whose document is known must use a method (and
   * algorithm) it lists, as at start. An environment not discovered yet (a new issuer) is not
   * checked: it is read when first needed (README "Identity providers").
   */
  problemsOf(service: ServiceConfig): string[] {
    return [...service.environments.values()].flatMap((environment) => {
      const found = environment.issuer ? this.documents.get(keyOf(environment)) : undefined;
      return found ? clientProblems(environment, found, service.clients) : [];
    });
  }

  /** The last good document of an environment, if any (for tests and the admin view). */
  discovered(environment: EnvironmentConfig): DiscoveredIdp | undefined {
    return this.documents.get(keyOf(environment));
  }

  private issuerEnvironments(): EnvironmentConfig[] {
    return [...(this.config?.service.environments.values() ?? [])].filter((e) => e.issuer);
  }

  /** One read at a time per environment; the result replaces the known document. */
  private discover(environment: EnvironmentConfig): Promise<DiscoveredIdp> {
    const key = keyOf(environment);
    let running = this.inFlight.get(key);
    if (!running) {
      running = this.read(environment)
        .then((found) => {
          this.documents.set(key, found);
          return found;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, running);
    }
    return running;
  }

  private async retryUntilFound(environment: EnvironmentConfig): Promise<void> {
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.clock.sleep(
          Math.max(500, backoffDelayMs(RETRY_POLICY.backoff, attempt)),
          this.stopping.signal,
        );
        if (this.documents.has(keyOf(environment))) return; // found on demand meanwhile
        await this.discover(environment);
        this.logger.log({ msg: 'IdP discovered', environment: environment.name });
        return;
      } catch {
        // unreachable still (or shutting down): the loop condition decides
      }
    }
  }

  private async refreshAll(): Promise<void> {
    for (const environment of this.issuerEnvironments()) {
      try {
        await this.discover(environment);
      } catch (e) {
        this.logger.warn({
          msg: 'IdP discovery refresh failed; keeping the last document',
          environment: environment.name,
          error: (e as Error).message,
        });
      }
    }
  }

  /**
   * Reads `<issuer>/.well-known/openid-configuration`, else RFC 8414's
   * `/.well-known/oauth-authorization-server<path>`. A network failure or a 5xx is "unavailable"
   * (retried); a document that answers but does not fit is DiscoveryRefused. A redirect is not
   * followed (like the token request's): it could lead to plain http:// beyond loopback, which
   * the `issuer` and `allowInsecureHttp` checks would never see.
   */
  private async read(environment: EnvironmentConfig): Promise<DiscoveredIdp> {
    const issuer = environment.issuer!;
    let lastStatus = 0;
    for (const url of metadataUrls(issuer)) {
      const response = await fetch(url, {
        headers: { Accept: 'application/json' },
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(environment.timeoutMs), this.stopping.signal]),
        dispatcher: this.dispatchers.for(
          environment.caFile !== undefined ? { caFile: environment.caFile } : {},
        ),
      });
      const body = await readBodyText(response, MAX_DOCUMENT_BYTES);
      if (response.status !== 200) {
        lastStatus = response.status;
        if (response.status >= 500) break;
        continue; // 404, a redirect and the like: try the other well-known location
      }
      return parseDocument(environment, body, this.clock.now());
    }
    throw new Error(`the metadata endpoints answered HTTP ${lastStatus}`);
  }
}

function keyOf(environment: EnvironmentConfig): string {
  return `${environment.name}\u0000${environment.issuer ?? ''}`;
}

/** OpenID Connect Discovery §4 appends; RFC 8414 §3.1 inserts before the issuer's path. */
function metadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  return [
    `${url.origin}${path}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

function parseDocument(
  environment: EnvironmentConfig,
  body: string | undefined,
  now: number,
): DiscoveredIdp {
  const field = `environments.${environment.name}.issuer`;
  let doc: unknown;
  try {
    doc = JSON.parse(body ?? '');
  } catch {
    throw new DiscoveryRefused([`${field}: the discovery document is not JSON`]);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DiscoveryRefused([`${field}: the discovery document is not a JSON object`]);
  }
  const d = doc as Record<string, unknown>;
  const problems: string[] = [];
  // OpenID Connect Discovery §4.3, RFC 8414 §3.3: exactly the issuer asked for, or an impostor.
  if (d.issuer !== environment.issuer) {
    problems.push(
      `${field}: the discovery document names issuer ${JSON.stringify(d.issuer)}, not ${JSON.stringify(environment.issuer)}`,
    );
  }
  const tokenEndpoint = d.token_endpoint;
  if (
    typeof tokenEndpoint !== 'string' ||
    !URL.canParse(tokenEndpoint) ||
    !/^https?:$/.test(new URL(tokenEndpoint).protocol)
  ) {
    problems.push(`${field}: the discovery document has no http(s) token_endpoint`);
  } else if (insecureHttp(tokenEndpoint, environment.allowInsecureHttp)) {
    problems.push(
      `${field}: the discovered token_endpoint is http:// beyond loopback; set allowInsecureHttp: true to accept it`,
    );
  }
  const aliases = d.mtls_endpoint_aliases as Record<string, unknown> | undefined;
  const mtlsTokenEndpoint = aliases?.token_endpoint;
  const mtlsUsable =
    typeof mtlsTokenEndpoint === 'string' &&
    URL.canParse(mtlsTokenEndpoint) &&
    new URL(mtlsTokenEndpoint).protocol === 'https:';
  if (problems.length > 0) throw new DiscoveryRefused(problems);
  return {
    tokenEndpoint: tokenEndpoint as string,
    ...(mtlsUsable ? { mtlsTokenEndpoint } : {}),
    authMethods: stringList(d.token_endpoint_auth_methods_supported) ?? DEFAULT_AUTH_METHODS,
    ...(stringList(d.token_endpoint_auth_signing_alg_values_supported)
      ? { signingAlgs: stringList(d.token_endpoint_auth_signing_alg_values_supported) }
      : {}),
    fetchedAt: now,
  };
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined;
}

/** Clients of this environment whose method or algorithm the IdP does not list. */
function clientProblems(
  environment: EnvironmentConfig,
  found: DiscoveredIdp,
  clients: readonly ClientConfig[],
): string[] {
  const problems: string[] = [];
  clients.forEach((client, i) => {
    if (client.environment !== environment.name) return;
    if (!found.authMethods.includes(client.authMethod)) {
      problems.push(
        `clients[${i}].authMethod: ${client.authMethod} is not among the token_endpoint_auth_methods_supported of environment "${environment.name}" (${found.authMethods.join(', ')})`,
      );
    }
    if (client.signingAlg && found.signingAlgs && !found.signingAlgs.includes(client.signingAlg)) {
      problems.push(
        `clients[${i}].signingAlg: ${client.signingAlg} is not among the token_endpoint_auth_signing_alg_values_supported of environment "${environment.name}" (${found.signingAlgs.join(', ')})`,
      );
    }
  });
  return problems;
}
