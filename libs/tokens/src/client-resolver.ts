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
  constructor(private readonly config: ConfigService) {}

  resolve(caller: Caller, clientId: string, environment: string | undefined): ClientConfig {
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
