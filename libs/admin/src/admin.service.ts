import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigError, ConfigService, type ClientConfig } from '@app/config';
import { InvalidRequestError } from '@app/errors';
import { secretFingerprint, secretFingerprintKey, tokenFingerprint } from '@app/observability';
import { ConfigReloader, SecretRotationService } from '@app/rotation';
import { RefreshScheduler, TokenCache, TokenFetcher } from '@app/tokens';
import type { AdminClientDto, AdminClientsDto, AdminRefreshDto, AdminReloadDto } from './admin.dto';

/** The operator's view and levers: per-client state, forced refresh, reload. */
@Injectable()
export class AdminService {
  /**
   * The fingerprint key: derived from the encryption key when there is one, so fingerprints
   * agree across replicas yet cannot be checked against guessed secrets without it; random per
   * process in memory mode.
   */
  private readonly fingerprintKey: Buffer;

  constructor(
    private readonly config: ConfigService,
    private readonly cache: TokenCache,
    private readonly fetcher: TokenFetcher,
    private readonly scheduler: RefreshScheduler,
    private readonly rotation: SecretRotationService,
    private readonly reloader: ConfigReloader,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.fingerprintKey = secretFingerprintKey(config.runtime.encryptionKeys[0]?.key);
  }

  clients(): AdminClientsDto {
    return { clients: this.config.service.clients.map((client) => this.describe(client)) };
  }

  async refresh(clientId: string, environment: string | undefined): Promise<AdminRefreshDto> {
    const client = this.findClient(clientId, environment);
    const held = this.cache.local(client);
    const token = await this.fetcher.obtain(client, held?.expiresAt ?? 0);
    return {
      clientId: client.clientId,
      environment: client.environment,
      expiresAt: new Date(token.expiresAt).toISOString(),
      tokenFingerprint: tokenFingerprint(token.accessToken),
    };
  }

  reload(): AdminReloadDto {
    try {
      return this.reloader.reload();
    } catch (e) {
      if (e instanceof ConfigError)
        throw new InvalidRequestError(
          `Configuration refused; the running configuration stays. ${e.message}`,
        );
      throw e;
    }
  }

  private describe(client: ClientConfig): AdminClientDto {
    const token = this.cache.local(client);
    const live = token && token.expiresAt > this.clock.now() ? token : undefined;
    const refresh = this.scheduler.state(client.key);
    const rotation = this.rotation.status(client.key);
    const secret = this.config.secretFor(client.key) ?? '';
    return {
      clientId: client.clientId,
      environment: client.environment,
      hasToken: live !== undefined,
      expiresAt: live ? iso(live.expiresAt) : undefined,
      tokenFingerprint: live ? tokenFingerprint(live.accessToken) : undefined,
      lastRefreshAt: iso(refresh.lastRefreshAt),
      nextRefreshAt: iso(refresh.nextRefreshAt),
      lastError: refresh.lastError && { ...refresh.lastError, at: iso(refresh.lastError.at)! },
      secretFingerprint: secretFingerprint(secret, this.fingerprintKey),
      secretCandidatePending: rotation.candidatePending,
      lastRotationAt: iso(rotation.lastRotationAt),
      lastRotationError: rotation.lastRotationError && {
        ...rotation.lastRotationError,
        at: iso(rotation.lastRotationError.at)!,
      },
    };
  }

  private findClient(clientId: string, environment: string | undefined): ClientConfig {
    const matches = this.config
      .clientsWithId(clientId)
      .filter((c) => environment === undefined || c.environment === environment);
    if (matches.length === 1) return matches[0];
    if (matches.length > 1)
      throw new InvalidRequestError(
        'The client exists in several environments; choose one with ?environment=.',
      );
    throw new InvalidRequestError('No such client in the configuration.');
  }
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
