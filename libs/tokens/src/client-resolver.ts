import { Injectable } from '@nestjs/common';
import { CLIENT_ID, ConfigService, ENVIRONMENT_NAME, type ClientConfig } from '@app/config';
import { isCallerAllowed, type Caller } from '@app/auth';
import { InvalidRequestError, UnknownClientError } from '@app/errors';

/**
 * Turns `clientId` + optional `environment` into one configured client the caller may use.
 * Unknown and not-allowed clients give the same UnknownClientError (reason kept for the audit
 * log only). Without `environment`, only the environments the caller is allowed count, so an
 * ambiguity answer reveals nothing the caller could not already ask for.
 */
@Injectable()
export class ClientResolver {
  /**
   * Answers already given, per configuration (replaced whole on reload, never mutated) and per
   * caller: a cache hit skips the checks below on the hot path. Only successes are kept, so
   * the entries are bounded by the configured clients, whatever the requests ask for.
   */
  private readonly resolved = new WeakMap<object, WeakMap<Caller, ResolvedClients>>();

  constructor(private readonly config: ConfigService) {}

  resolve(caller: Caller, clientId: string, environment: string | undefined): ClientConfig {
    const known = this.resolvedFor(caller);
    const environmentKey = environment ?? NO_ENVIRONMENT;
    const hit = known.get(environmentKey)?.get(clientId);
    if (hit !== undefined) return hit;
    const client = this.check(caller, clientId, environment);
    let byClientId = known.get(environmentKey);
    if (byClientId === undefined)
      known.set(environmentKey, (byClientId = new Map<string, ClientConfig>()));
    byClientId.set(clientId, client);
    return client;
  }

  private resolvedFor(caller: Caller): ResolvedClients {
    const service = this.config.service;
    let byCaller = this.resolved.get(service);
    if (byCaller === undefined)
      this.resolved.set(service, (byCaller = new WeakMap<Caller, ResolvedClients>()));
    let known = byCaller.get(caller);
    if (known === undefined) byCaller.set(caller, (known = new Map() as ResolvedClients));
    return known;
  }

  private check(caller: Caller, clientId: string, environment: string | undefined): ClientConfig {
    if (!CLIENT_ID.test(clientId)) throw new InvalidRequestError('The client id is malformed.');
    if (environment !== undefined) {
      if (
        !ENVIRONMENT_NAME.test(environment) ||
        !this.config.service.environments.has(environment)
      ) {
        throw new InvalidRequestError('Unknown environment.');
      }
      const client = this.config.clientsWithId(clientId).find((c) => c.environment === environment);
      if (!client) throw new UnknownClientError('not_configured');
      if (!isCallerAllowed(caller, client)) throw new UnknownClientError('not_allowed');
      return client;
    }
    const candidates = this.config.clientsWithId(clientId);
    if (candidates.length === 0) throw new UnknownClientError('not_configured');
    const allowed = candidates.filter((c) => isCallerAllowed(caller, c));
    if (allowed.length === 0) throw new UnknownClientError('not_allowed');
    if (allowed.length > 1) {
      throw new InvalidRequestError(
        `The client exists in several environments (${allowed.map((c) => c.environment).join(', ')}); choose one with ?environment=.`,
      );
    }
    return allowed[0];
  }
}

/** The key of requests that named no environment (any string could be a request's). */
const NO_ENVIRONMENT = Symbol('no environment');

/** Resolved clients by environment asked for (NO_ENVIRONMENT when none was) and client id. */
type ResolvedClients = Map<string | typeof NO_ENVIRONMENT, Map<string, ClientConfig>>;
