import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { ConfigService, type ClientConfig, type RuntimeSettings } from '@app/config';
import { PeriodicTasks } from '@app/periodic';
import { CertificateExpiryMonitor } from './certificate-expiry.monitor';
import { TestClock } from '../../../test/support/clock';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

const DAY = 24 * 60 * 60_000;
const START = Date.UTC(2026, 10, 27, 10, 0, 0);

const entra: ClientConfig = {
  key: 'uat/entra.client',
  clientId: 'entra.client',
  environment: 'uat',
  secretSource: {
    kind: 'file',
    path: '/k.pem',
    field: 'privateKeyFile',
    certificatePath: '/c.crt',
  },
  authMethod: 'private_key_jwt',
  signingAlg: 'PS256',
  assertionCertificate: true,
};
const mtls: ClientConfig = {
  key: 'uat/mtls.client',
  clientId: 'mtls.client',
  environment: 'uat',
  secretSource: { kind: 'tls', certPath: '/m.crt', keyPath: '/m.key' },
  authMethod: 'tls_client_auth',
};
const plain: ClientConfig = {
  key: 'uat/plain.client',
  clientId: 'plain.client',
  environment: 'uat',
  secretSource: { kind: 'file', path: '/p.pem', field: 'privateKeyFile' },
  authMethod: 'private_key_jwt',
  signingAlg: 'RS256',
};

/** The credential a client's reader makes: certificate then key. */
function credentialEnding(notAfter: number): { credential: string; cert: string } {
  const pair = signingCertificate({
    notBefore: new Date(START - 300 * DAY),
    notAfter: new Date(notAfter),
  });
  return { credential: `${pair.cert.trim()}\n${pair.key.trim()}`, cert: pair.cert };
}

describe('CertificateExpiryMonitor', () => {
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  function monitorOf(clients: ClientConfig[], secrets: [string, string][], clock: TestClock) {
    const config = new ConfigService({} as RuntimeSettings, {
      service: {
        environments: new Map(),
        clients,
        callers: [],
        callerIssuers: [],
        refresh: { ratio: 0.75, minTtlSeconds: 30, minRejectionIntervalSeconds: 30 },
      },
      secrets: new Map(secrets),
    });
    return {
      config,
      sut: new CertificateExpiryMonitor(config, clock, new PeriodicTasks(new SchedulerRegistry())),
    };
  }

  it('says nothing about a certificate that ends in more than 14 days, nor about a key alone', () => {
    const clock = new TestClock({ start: START });
    const far = credentialEnding(START + 14 * DAY + 60_000);
    const { sut } = monitorOf(
      [entra, plain],
      [
        [entra.key, far.credential],
        [plain.key, `${far.cert.trim()}\n-----BEGIN PRIVATE KEY-----`],
      ],
      clock,
    );

    expect(sut.check()).toEqual([]);
    expect(warn).not.toHaveBeenCalled();
  });

  it('warns within 14 days, once a day per certificate, then errors once it has ended', async () => {
    const clock = new TestClock({ start: START });
    const ending = START + 14 * DAY + 60_000;
    const { sut } = monitorOf([entra], [[entra.key, credentialEnding(ending).credential]], clock);

    await clock.advance(2 * 60_000); // 13 days 23:59 left
    expect(sut.check()).toEqual([
      {
        environment: 'uat',
        clientId: 'entra.client',
        field: 'certificateFile',
        expiresAt: new Date(ending).toISOString(),
        expired: false,
      },
    ]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatchObject({
      msg: 'client certificate expires within 14 days; rotate it',
      clientId: 'entra.client',
      field: 'certificateFile',
      daysLeft: 13,
    });

    await clock.advance(DAY - 60_000); // the hourly looks of one day: no repeat
    expect(sut.check()).toEqual([]);
    await clock.advance(60_000);
    expect(sut.check()).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(2);

    await clock.advance(13 * DAY); // past notAfter
    expect(sut.check()).toEqual([expect.objectContaining({ expired: true })]);
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0][0]).toMatchObject({
      msg: 'client certificate has expired; the IdP refuses it until a new one is mounted',
      clientId: 'entra.client',
    });
  });

  it('errors at the first look after the end, even within a day of the last warning', async () => {
    const clock = new TestClock({ start: START });
    const ending = START + 3 * 60 * 60_000; // ends in 3 hours
    const { sut } = monitorOf([entra], [[entra.key, credentialEnding(ending).credential]], clock);

    expect(sut.check()).toEqual([expect.objectContaining({ expired: false })]);
    await clock.advance(4 * 60 * 60_000); // ended an hour ago; warned 4 hours ago
    expect(sut.check()).toEqual([expect.objectContaining({ expired: true })]);
    expect([warn.mock.calls.length, error.mock.calls.length]).toEqual([1, 1]);
    await clock.advance(60 * 60_000); // the next hourly look: no repeat of the error
    expect(sut.check()).toEqual([]);
    expect(error).toHaveBeenCalledTimes(1);
  });

  it('warns at the next look about another certificate a rotation brings (no day to wait), and forgets one rotated away', () => {
    const clock = new TestClock({ start: START });
    const { sut, config } = monitorOf(
      [entra],
      [[entra.key, credentialEnding(START + 3 * DAY).credential]],
      clock,
    );
    expect(sut.check()).toHaveLength(1);

    // Renewed, but (a mistake) only for 5 more days: warned at the next look, not a day later.
    config.replaceSecret(entra.key, credentialEnding(START + 5 * DAY).credential);
    expect(sut.check()).toEqual([expect.objectContaining({ clientId: 'entra.client' })]);

    // Renewed for a year: nothing more.
    config.replaceSecret(entra.key, credentialEnding(START + 365 * DAY).credential);
    expect(sut.check()).toEqual([]);
    expect(warn).toHaveBeenCalledTimes(2);
  });

  it('watches the clientCertFile of an mTLS client the same way', () => {
    const clock = new TestClock({ start: START });
    const ending = START + 2 * DAY;
    const pair = signingCertificate({ notAfter: new Date(ending) });
    const { sut } = monitorOf(
      [mtls],
      [[mtls.key, `${pair.cert.trim()}\n${pair.key.trim()}\n`]],
      clock,
    );

    expect(sut.check()).toEqual([
      {
        environment: 'uat',
        clientId: 'mtls.client',
        field: 'clientCertFile',
        expiresAt: new Date(ending).toISOString(),
        expired: false,
      },
    ]);
  });
});
