import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { CLOCK, backoffDelayMs, type BackoffPolicy, type Clock } from '@app/clock';
import {
  ConfigService,
  maxCredentialBytes,
  readChangedFileSecret,
  readChangedSigningCredential,
  readChangedTlsCredential,
  readClientSecret,
  type ClientConfig,
} from '@app/config';
import { DomainError } from '@app/errors';
import { SecretCandidates, TokenSource, type Candidate } from '@app/tokens';

/** A rejected candidate is tried again after this, doubling up to the cap. */
export const CANDIDATE_RETRY_BASE_MS = 5_000;
export const CANDIDATE_RETRY_CAP_MS = 5 * 60_000;
/** One candidate per client is retried: no herd to spread, so no jitter. */
export const CANDIDATE_BACKOFF: BackoffPolicy = {
  baseMs: CANDIDATE_RETRY_BASE_MS,
  capMs: CANDIDATE_RETRY_CAP_MS,
  jitter: 'none',
};
/** Secret sources checked at once. */
export const CHECK_CONCURRENCY = 16;

/** What the admin view and metrics show of a client's rotation. */
export interface RotationStatus {
  candidatePending: boolean;
  candidateSeenAt?: number;
  lastRotationAt?: number;
  lastRotationError?: { code: string; message: string; at: number };
}

/**
 * Secrets that change on disk are tried before they are adopted: the new secret must fetch a
 * token (which is then stored like any other) before it replaces the one in use. If the IdP
 * refuses it, the working secret stays in use, valid tokens keep being served, and the
 * refusal shows in the admin view and the log; the candidate is retried with backoff, and
 * also the moment the secret in use starts being refused (the fetcher asks SecretCandidates).
 */
@Injectable()
export class SecretRotationService {
  private readonly logger = new Logger('SecretRotation');
  private readonly tries = new Map<string, Promise<void>>();
  /** Identity (inode, size, mtime) of each secret file when last read. */
  private readonly fileIdentities = new Map<string, string>();

  constructor(
    private readonly config: ConfigService,
    private readonly tokens: TokenSource,
    private readonly candidates: SecretCandidates,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  /** Re-reads every client's secret source; starts a try for each one that changed. */
  async checkAll(env: NodeJS.ProcessEnv = process.env): Promise<void> {
    const clients = [...this.config.service.clients];
    const checks: Promise<void>[] = [];
    // A few at a time: thousands of clients never flood the event loop or the file system.
    const worker = async (): Promise<void> => {
      for (let client = clients.shift(); client; client = clients.shift()) {
        // An unchanged file still gets its pending candidate retried when the backoff allows.
        const secret =
          (await this.currentSecretOf(client, env)) ?? this.candidates.pending(client.key)?.secret;
        if (secret !== undefined) checks.push(this.offer(client, secret));
      }
    };
    await Promise.all(Array.from({ length: CHECK_CONCURRENCY }, worker));
    await Promise.all(checks);
  }

  /** The secret on disk (or in the environment) if it may differ from the last one seen. */
  private async currentSecretOf(
    client: ClientConfig,
    env: NodeJS.ProcessEnv,
  ): Promise<string | undefined> {
    if (client.secretSource.kind === 'env') {
      const read = readClientSecret(client, env);
      return typeof read === 'string' ? read : undefined;
    }
    const { secretSource } = client;
    const previous = this.fileIdentities.get(client.key);
    const read =
      secretSource.kind === 'tls'
        ? await readChangedTlsCredential(secretSource.certPath, secretSource.keyPath, previous)
        : secretSource.certificatePath !== undefined
          ? await readChangedSigningCredential(
              secretSource.certificatePath,
              secretSource.path,
              client.signingAlg ?? 'RS256',
              previous,
            )
          : await readChangedFileSecret(
              secretSource.path,
              previous,
              maxCredentialBytes(secretSource),
              secretSource.field,
            );
    if (!read) return undefined; // missing for a moment: keep what works
    this.fileIdentities.set(client.key, read.identity);
    if (read.problem !== undefined) {
      // Read again only when the files change: one line per state of the files, never their
      // content. The credential in use stays (README "Rotation and reload").
      this.logger.warn({
        msg: 'client credential files changed but are not usable; the credential in use stays',
        environment: client.environment,
        clientId: client.clientId,
        problem: read.problem,
      });
    }
    return read.secret;
  }

  /** A secret seen for a client: nothing to do if in use; else it becomes (or stays) the candidate. */
  async offer(client: ClientConfig, secret: string): Promise<void> {
    const inUse = this.config.secretFor(client.key);
    if (secret === inUse) {
      this.candidates.withdraw(client.key);
      return;
    }
    const digest = digestOf(secret);
    let candidate = this.candidates.pending(client.key);
    if (!candidate || candidate.digest !== digest) {
      candidate = {
        secret,
        digest,
        seenAt: this.clock.now(),
        attempts: 0,
        nextTryAt: this.clock.monotonic(),
      };
      this.candidates.propose(client.key, candidate);
      this.logger.log({
        msg: 'new client secret seen; trying it',
        environment: client.environment,
        clientId: client.clientId,
      });
    }
    if (this.clock.monotonic() >= candidate.nextTryAt) await this.tryCandidate(client, candidate);
  }

  /** The IdP accepted the candidate: it becomes the secret in use. */
  private adopt(client: ClientConfig, secret: string): void {
    this.candidates.adopt(client, secret);
    this.tokens.clearRejection(client.key);
  }

  status(clientKey: string): RotationStatus {
    const candidate = this.candidates.pending(clientKey);
    const history = this.candidates.historyOf(clientKey);
    return {
      candidatePending: candidate !== undefined,
      candidateSeenAt: candidate?.seenAt,
      lastRotationAt: history?.lastRotationAt,
      lastRotationError: candidate?.lastError ?? history?.lastRotationError,
    };
  }

  /** Forget candidates of clients that no longer exist (after a reload). */
  retain(clientKeys: ReadonlySet<string>): void {
    this.candidates.retain(clientKeys);
    for (const key of this.fileIdentities.keys())
      if (!clientKeys.has(key)) this.fileIdentities.delete(key);
  }

  private tryCandidate(client: ClientConfig, candidate: Candidate): Promise<void> {
    const running = this.tries.get(client.key);
    if (running) return running;
    const attempt = this.attempt(client, candidate).finally(() => this.tries.delete(client.key));
    this.tries.set(client.key, attempt);
    return attempt;
  }

  private async attempt(client: ClientConfig, candidate: Candidate): Promise<void> {
    candidate.attempts++;
    try {
      await this.tokens.tryWithSecret(client, candidate.secret);
      if (this.candidates.pending(client.key) === candidate) this.adopt(client, candidate.secret);
    } catch (e) {
      const code = e instanceof DomainError ? e.code : 'error';
      const lastError = {
        code,
        message: e instanceof DomainError ? e.message : 'unexpected error',
        at: this.clock.now(),
      };
      this.candidates.refused(client, candidate, lastError);
      // A backoff: on the monotonic clock, so a wall-clock step neither skips nor stalls it.
      candidate.nextTryAt =
        this.clock.monotonic() + backoffDelayMs(CANDIDATE_BACKOFF, candidate.attempts);
      // One line, no secret: ops see the refusal; the working secret stays in use.
      this.logger.warn({
        msg: 'new client secret refused; keeping the secret in use',
        environment: client.environment,
        clientId: client.clientId,
        error: code,
        retryInMs: candidate.nextTryAt - this.clock.monotonic(),
      });
    }
  }
}

function digestOf(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
