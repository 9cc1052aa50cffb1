import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type ClientConfig } from '@app/config';
import { MetricsService } from '@app/observability';

/** A newer secret seen for a client, not yet accepted by the IdP. */
export interface Candidate {
  readonly secret: string;
  readonly digest: string;
  readonly seenAt: number;
  attempts: number;
  nextTryAt: number;
  lastError?: { code: string; message: string; at: number };
}

/** When a client's secret last rotated, or why its last candidate was refused. */
export interface RotationHistory {
  lastRotationAt?: number;
  lastRotationError?: Candidate['lastError'];
}

/**
 * The rotation seam: newer secrets seen on disk but not yet accepted by the IdP, and what became
 * of them. @app/rotation finds and tries candidates; the fetcher tries the candidate the moment
 * the secret in use is refused, and adopts it when the IdP accepts it. Both ask this one
 * provider, so neither has to register itself with the other (README "Rotation and reload").
 */
@Injectable()
export class SecretCandidates {
  // The log lines keep the rotation's name: adoption is rotation, whoever tried the secret.
  private readonly logger = new Logger('SecretRotation');
  private readonly candidates = new Map<string, Candidate>();
  private readonly history = new Map<string, RotationHistory>();

  constructor(
    private readonly config: ConfigService,
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  candidateFor(client: ClientConfig): string | undefined {
    return this.candidates.get(client.key)?.secret;
  }

  pending(clientKey: string): Candidate | undefined {
    return this.candidates.get(clientKey);
  }

  propose(clientKey: string, candidate: Candidate): void {
    this.candidates.set(clientKey, candidate);
  }

  /** The secret in use is (again) the one on disk: nothing is pending. */
  withdraw(clientKey: string): void {
    this.candidates.delete(clientKey);
  }

  historyOf(clientKey: string): RotationHistory | undefined {
    return this.history.get(clientKey);
  }

  /** The IdP accepted the candidate: it becomes the secret in use. */
  adopt(client: ClientConfig, secret: string): void {
    this.config.replaceSecret(client.key, secret);
    this.candidates.delete(client.key);
    this.history.set(client.key, { lastRotationAt: this.clock.now() });
    this.metrics?.secretRotations.inc({
      client_id: client.clientId,
      environment: client.environment,
      outcome: 'adopted',
    });
    this.logger.log({
      msg: 'client secret rotated',
      environment: client.environment,
      clientId: client.clientId,
    });
  }

  /** The IdP refused the candidate: the secret in use stays; the refusal is shown. */
  refused(client: ClientConfig, candidate: Candidate, error: Candidate['lastError']): void {
    candidate.lastError = error;
    this.metrics?.secretRotations.inc({
      client_id: client.clientId,
      environment: client.environment,
      outcome: 'refused',
    });
    this.history.set(client.key, { ...this.history.get(client.key), lastRotationError: error });
  }

  /** Forget clients that no longer exist (after a reload). */
  retain(clientKeys: ReadonlySet<string>): void {
    for (const key of this.candidates.keys()) if (!clientKeys.has(key)) this.candidates.delete(key);
    for (const key of this.history.keys()) if (!clientKeys.has(key)) this.history.delete(key);
  }
}
