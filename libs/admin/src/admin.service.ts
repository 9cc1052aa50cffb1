import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, wallTimeOf, type Clock } from '@app/clock';
import { ConfigError, ConfigService, credentialCertificate, type ClientConfig } from '@app/config';
import { InvalidRequestError } from '@app/errors';
import { secretFingerprint, secretFingerprintKey, tokenFingerprint } from '@app/observability';
import { ConfigReloader, SecretRotationService } from '@app/rotation';
import { RefreshScheduler, TokenSource } from '@app/tokens';
import type { FleetAck } from '@app/token-store';
import type {
  AdminClientDto,
  AdminClientsDto,
  AdminRefreshDto,
  AdminReloadDto,
  FleetReplicaDto,
} from './admin.dto';

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
    private readonly source: TokenSource,
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

  /**
   * Revokes the client's current token on every replica and fetches one new token for the
   * fleet: no replica serves the old one again (README "Fleet-wide invalidation").
   */
  async refresh(clientId: string, environment: string | undefined): Promise<AdminRefreshDto> {
    const client = this.findClient(clientId, environment);
    const { token, revocation } = await this.source.replace(client);
    return {
      clientId: client.clientId,
      environment: client.environment,
      expiresAt: new Date(wallTimeOf(this.clock, token.expiresAt)).toISOString(),
      tokenFingerprint: tokenFingerprint(token.accessToken),
      revokedTokenFingerprint: revocation?.revokedFingerprint,
      revocationDurable: revocation?.durable ?? false,
      replicas: replicasOf(revocation?.replicas ?? []),
    };
  }

  /** Reloads this replica and asks every other one to reload its own files. */
  async reload(): Promise<AdminReloadDto> {
    const { local, replicas } = await this.reloader.reloadFleet();
    if (local instanceof ConfigError) {
      throw new InvalidRequestError(
        `Configuration refused; the running configuration stays. ${local.message}`,
      );
    }
    return { ...local, replicas: replicasOf(replicas) };
  }

  private describe(client: ClientConfig): AdminClientDto {
    const token = this.source.held(client);
    const live = token && token.expiresAt > this.clock.monotonic() ? token : undefined;
    const refresh = this.scheduler.state(client.key);
    const rotation = this.rotation.status(client.key);
    const secret = this.config.secretFor(client.key) ?? '';
    const certificate = credentialCertificate(client, secret)?.certificate;
    return {
      clientId: client.clientId,
      environment: client.environment,
      hasToken: live !== undefined,
      expiresAt: live ? iso(wallTimeOf(this.clock, live.expiresAt)) : undefined,
      tokenFingerprint: live ? tokenFingerprint(live.accessToken) : undefined,
      lastRefreshAt: iso(refresh.lastRefreshAt),
      nextRefreshAt: iso(
        refresh.nextRefreshAt === undefined
          ? undefined
          : wallTimeOf(this.clock, refresh.nextRefreshAt),
      ),
      lastError: refresh.lastError && { ...refresh.lastError, at: iso(refresh.lastError.at)! },
      secretFingerprint: secretFingerprint(secret, this.fingerprintKey),
      secretCandidatePending: rotation.candidatePending,
      lastRotationAt: iso(rotation.lastRotationAt),
      lastRotationError: rotation.lastRotationError && {
        ...rotation.lastRotationError,
        at: iso(rotation.lastRotationError.at)!,
      },
      certificateExpiresAt: certificate?.validToDate.toISOString(),
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

function replicasOf(acks: readonly FleetAck[]): FleetReplicaDto[] {
  return acks.map((a) => ({ replica: a.replica, outcome: a.outcome, detail: a.detail }));
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}
