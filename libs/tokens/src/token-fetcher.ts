import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import { UpstreamUnavailableError } from '@app/errors';
import { OAuthClient } from '@app/upstream';
import type { StoredToken } from '@app/token-store';
import { SingleFlight } from './single-flight';
import { TokenCache } from './token-cache';

/**
 * Obtains a new token from the IdP and stores it. However many requests want a token for the
 * same client at once, this replica sends one request (single flight).
 */
@Injectable()
export class TokenFetcher {
  private readonly logger = new Logger(TokenFetcher.name);
  private readonly flights = new SingleFlight<StoredToken>();

  constructor(
    private readonly config: ConfigService,
    private readonly upstream: OAuthClient,
    private readonly cache: TokenCache,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  fetch(client: ClientConfig): Promise<StoredToken> {
    return this.flights.run(client.key, () => this.fetchAndSave(client));
  }

  isFetching(client: ClientConfig): boolean {
    return this.flights.isRunning(client.key);
  }

  private async fetchAndSave(client: ClientConfig): Promise<StoredToken> {
    const environment = this.config.service.environments.get(client.environment);
    const secret = this.config.secretFor(client.key);
    if (!environment || secret === undefined) {
      // Only possible while a reload removes the client under a running request.
      throw new UpstreamUnavailableError('bad_status', 'the client is being reconfigured');
    }
    const issued = await this.upstream.fetchToken({
      environment: client.environment,
      clientId: client.clientId,
      secret,
      scope: client.scope,
      authMethod: client.authMethod,
      tokenUrl: environment.tokenUrl,
      timeoutMs: environment.timeoutMs,
    });
    const token: StoredToken = {
      accessToken: issued.accessToken,
      tokenType: 'Bearer',
      scope: issued.scope,
      requestedAt: issued.requestedAt,
      expiresAt: issued.expiresAt,
    };
    await this.cache.save(client, token);
    this.logger.log({
      msg: 'token obtained',
      environment: client.environment,
      clientId: client.clientId,
      lifetimeSeconds: issued.lifetimeSeconds,
      expiresAt: new Date(token.expiresAt).toISOString(),
      latencyMs: this.clock.now() - issued.requestedAt,
    });
    return token;
  }
}
