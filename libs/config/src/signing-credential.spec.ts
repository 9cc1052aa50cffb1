import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  readChangedSigningCredential,
  readClientSecret,
  readClientSecrets,
} from './client-secrets.reader';
import { ConfigError } from './config.error';
import type { ClientConfig, SigningAlg } from './config.types';
import { credentialCertificate, splitSigningCredential } from './signing-credential';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

/** private_key_jwt with `certificateFile` (README "Identity providers"). */
describe('a private_key_jwt key with its certificateFile', () => {
  let dir: string;
  let n = 0;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'signing-credential-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the two files; returns the client that names them. */
  function clientWith(key: string, cert: string, signingAlg: SigningAlg = 'PS256'): ClientConfig {
    n++;
    writeFileSync(join(dir, `k${n}.pem`), key);
    writeFileSync(join(dir, `c${n}.crt`), cert);
    return {
      key: 'uat/entra.client',
      clientId: 'entra.client',
      environment: 'uat',
      secretSource: {
        kind: 'file',
        path: join(dir, `k${n}.pem`),
        field: 'privateKeyFile',
        certificatePath: join(dir, `c${n}.crt`),
      },
      authMethod: 'private_key_jwt',
      signingAlg,
      assertionCertificate: true,
    };
  }
  const certPath = (client: ClientConfig): string =>
    (client.secretSource as { certificatePath: string }).certificatePath;
  const keyPath = (client: ClientConfig): string => (client.secretSource as { path: string }).path;

  it('reads the pair as one credential: the certificate, then the key; split back apart', () => {
    const pair = signingCertificate();
    const client = clientWith(`${pair.key}\n`, `${pair.cert}\n\n`);

    const sut = readClientSecret(client, {});

    expect(sut).toBe(`${pair.cert.trim()}\n${pair.key.trim()}`);
    expect(splitSigningCredential(sut as string)).toEqual({
      certificate: pair.cert.trim(),
      privateKey: pair.key.trim(),
    });
    expect(credentialCertificate(client, sut as string)).toEqual({
      field: 'certificateFile',
      certificate: new X509Certificate(pair.cert),
    });
  });

  it('ignores text around the certificate block (the Bag Attributes of `openssl pkcs12 -nokeys`)', () => {
    const pair = signingCertificate();
    const exported = [
      'Bag Attributes',
      '    localKeyID: 01 00 00 00',
      '    friendlyName: token-vendor-entra',
      'subject=CN = token-vendor',
      'issuer=CN = token-vendor',
      pair.cert.trim(),
      '',
    ].join('\n');
    const client = clientWith(pair.key, exported);

    expect(readClientSecret(client, {})).toBe(`${pair.cert.trim()}\n${pair.key.trim()}`);
  });

  it('a key alone splits as all key and holds no certificate', () => {
    const pair = signingCertificate();
    expect(splitSigningCredential(pair.key)).toEqual({ privateKey: pair.key });
    const keyOnly: ClientConfig = {
      ...clientWith(pair.key, pair.cert),
      assertionCertificate: undefined,
    };
    expect(credentialCertificate(keyOnly, `${pair.cert.trim()}\n${pair.key}`)).toBeUndefined();
  });

  it('reads an EC key and its certificate for ES256', () => {
    const pair = signingCertificate({ kind: 'ec' });
    expect(readClientSecret(clientWith(pair.key, pair.cert, 'ES256'), {})).toBe(
      `${pair.cert.trim()}\n${pair.key.trim()}`,
    );
  });

  it.each<[string, () => { key: string; cert: string }, string, string]>([
    [
      "another key's certificate",
      () => ({ key: signingCertificate().key, cert: signingCertificate().cert }),
      'certificateFile',
      'does not match privateKeyFile',
    ],
    [
      'a file that is not a certificate',
      () => ({ key: signingCertificate().key, cert: 'not a certificate\n' }),
      'certificateFile',
      'holds no PEM certificate',
    ],
    [
      'a certificate block that does not parse',
      () => ({
        key: signingCertificate().key,
        cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      }),
      'certificateFile',
      'holds no PEM certificate',
    ],
    [
      'a chain of two certificates',
      () => {
        const pair = signingCertificate();
        return { key: pair.key, cert: `${pair.cert}${signingCertificate().cert}` };
      },
      'certificateFile',
      "must hold exactly one PEM certificate (the signing key's) and no other PEM block",
    ],
    [
      'the certificate with its key in the same file',
      () => {
        const pair = signingCertificate();
        return { key: pair.key, cert: `${pair.cert}${pair.key}` };
      },
      'certificateFile',
      "must hold exactly one PEM certificate (the signing key's) and no other PEM block",
    ],
    [
      'a key that does not fit signingAlg',
      () => signingCertificate({ kind: 'ec' }),
      'privateKeyFile',
      'holds a ec key; PS256 needs rsa',
    ],
  ])('refuses %s, naming the field and the file, never the key', (_what, make, field, problem) => {
    const { key, cert } = make();
    const client = clientWith(key, cert);
    const path = field === 'certificateFile' ? certPath(client) : keyPath(client);

    expect(readClientSecret(client, {})).toEqual({ field, problem: `${path} ${problem}` });
  });

  it('at start, the one message names clients[i].certificateFile', () => {
    const first = signingCertificate();
    const client = clientWith(first.key, signingCertificate().cert);

    const failure = (() => {
      try {
        return readClientSecrets([client], {}, 'config.yaml');
      } catch (e) {
        return e;
      }
    })();

    expect(failure).toBeInstanceOf(ConfigError);
    expect((failure as ConfigError).problems).toEqual([
      `clients[0].certificateFile: ${certPath(client)} does not match privateKeyFile`,
    ]);
    expect((failure as ConfigError).message).not.toContain('PRIVATE KEY');
  });

  it('refuses a missing certificate file and an empty key file', () => {
    const pair = signingCertificate();
    const client = clientWith(pair.key, pair.cert);
    rmSync(certPath(client));
    expect(readClientSecret(client, {})).toEqual({
      field: 'certificateFile',
      problem: `cannot read ${certPath(client)} (ENOENT)`,
    });

    const empty = clientWith('\n', pair.cert);
    expect(readClientSecret(empty, {})).toEqual({
      field: 'privateKeyFile',
      problem: `the secret in ${keyPath(empty)} is empty`,
    });
  });

  it('while running: a new certificate beside the old key is not offered; the new pair is, once both are in place', async () => {
    const old = signingCertificate();
    const next = signingCertificate();
    const client = clientWith(old.key, old.cert);
    const read = (previous: string | undefined) =>
      readChangedSigningCredential(certPath(client), keyPath(client), 'PS256', previous);

    const first = await read(undefined);
    expect(first?.secret).toBe(`${old.cert.trim()}\n${old.key.trim()}`);
    expect(await read(first!.identity)).toEqual({ identity: first!.identity });

    // Half a rotation: the certificate is new, the key is still the old one.
    writeFileSync(`${certPath(client)}.new`, next.cert);
    renameSync(`${certPath(client)}.new`, certPath(client));
    const half = await read(first!.identity);
    // Not offered; what is wrong is said (field and path, never the files' content).
    expect(half).toEqual({
      identity: expect.any(String) as unknown,
      problem: `certificateFile: ${certPath(client)} does not match privateKeyFile`,
    });
    expect(half!.identity).not.toBe(first!.identity);

    writeFileSync(`${keyPath(client)}.new`, next.key);
    renameSync(`${keyPath(client)}.new`, keyPath(client));
    const whole = await read(half!.identity);
    expect(whole?.secret).toBe(`${next.cert.trim()}\n${next.key.trim()}`);
    const { certificate, privateKey } = splitSigningCredential(whole!.secret!);
    expect(new X509Certificate(certificate!).checkPrivateKey(createPrivateKey(privateKey))).toBe(
      true,
    );
  });

  it('while running: a file missing for a moment keeps what works (undefined)', async () => {
    const pair = signingCertificate();
    const client = clientWith(pair.key, pair.cert);
    rmSync(certPath(client));

    await expect(
      readChangedSigningCredential(certPath(client), keyPath(client), 'PS256', undefined),
    ).resolves.toBeUndefined();
  });
});
