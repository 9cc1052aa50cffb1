import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, credentialCertificate } from '@app/config';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';

const DAY_MS = 24 * 60 * 60_000;
/** A certificate in use this close to its end is warned about (README "Rotation and reload"). */
export const CERTIFICATE_EXPIRY_WARNING_MS = 14 * DAY_MS;
/** How often the certificates in use are looked at: an expiry window is days, not minutes. */
export const CERTIFICATE_CHECK_INTERVAL_MS = 60 * 60_000;
/** The warning about one certificate is repeated at most this often while it stays in use. */
export const CERTIFICATE_WARNING_REPEAT_MS = DAY_MS;

/** One certificate warned about, as check() reports it. */
export interface CertificateWarning {
  environment: string;
  clientId: string;
  field: 'certificateFile' | 'clientCertFile';
  /** The certificate's notAfter, ISO 8601. */
  expiresAt: string;
  expired: boolean;
}

/**
 * Makes the end of every client certificate in use visible before the IdP starts refusing it:
 * a `certificateFile` of private_key_jwt, a `clientCertFile` of tls_client_auth. At start and
 * every hour, a certificate that ends within 14 days is logged (warn; error once it has ended),
 * once a day per certificate (and at the next look for another certificate a rotation
 * brought). Nothing is refused: the IdP decides, and a rotation on disk fixes
 * it without a restart (README "Rotation and reload").
 */
@Injectable()
export class CertificateExpiryMonitor implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('CertificateExpiry');
  private readonly poller: PeriodicTask;
  /** Per client: the certificate last warned about (SHA-256 fingerprint) and when (monotonic). */
  private readonly warned = new Map<string, { fingerprint: string; at: number }>();

  constructor(
    private readonly config: ConfigService,
    @Inject(CLOCK) private readonly clock: Clock,
    tasks: PeriodicTasks,
  ) {
    this.poller = tasks.create('certificate expiry check', CERTIFICATE_CHECK_INTERVAL_MS, () =>
      this.check(),
    );
  }

  onApplicationBootstrap(): void {
    this.check();
    this.poller.start();
  }

  onApplicationShutdown(): void {
    this.poller.stop();
  }

  /** One look at every client's certificate in use; returns the warnings logged by this look. */
  check(): CertificateWarning[] {
    const now = this.clock.now();
    const warnings: CertificateWarning[] = [];
    const seen = new Set<string>();
    for (const client of this.config.service.clients) {
      const credential = this.config.secretFor(client.key);
      const found =
        credential === undefined ? undefined : credentialCertificate(client, credential);
      if (found === undefined) continue;
      const expiresAt = found.certificate.validToDate.getTime();
      if (expiresAt - now > CERTIFICATE_EXPIRY_WARNING_MS) continue;
      seen.add(client.key);
      const expired = expiresAt <= now;
      // The state warned about: a certificate that ends after its last warning gets its error
      // at once, not a day after the warning.
      const fingerprint = `${found.certificate.fingerprint256}|${expired ? 'expired' : 'ending'}`;
      const last = this.warned.get(client.key);
      if (
        last?.fingerprint === fingerprint &&
        this.clock.monotonic() - last.at < CERTIFICATE_WARNING_REPEAT_MS
      ) {
        continue;
      }
      this.warned.set(client.key, { fingerprint, at: this.clock.monotonic() });
      const warning: CertificateWarning = {
        environment: client.environment,
        clientId: client.clientId,
        field: found.field,
        expiresAt: new Date(expiresAt).toISOString(),
        expired,
      };
      warnings.push(warning);
      if (warning.expired) {
        this.logger.error({
          msg: 'client certificate has expired; the IdP refuses it until a new one is mounted',
          ...warning,
        });
      } else {
        this.logger.warn({
          msg: 'client certificate expires within 14 days; rotate it',
          ...warning,
          daysLeft: Math.floor((expiresAt - now) / DAY_MS),
        });
      }
    }
    // A client rotated to a later certificate (or removed) starts afresh.
    for (const key of this.warned.keys()) if (!seen.has(key)) this.warned.delete(key);
    return warnings;
  }
}
