import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsPairFiles, readTlsPair } from './tls-pair-files';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

const FIELDS = { cert: 'REDIS_TLS_CERT_FILE', key: 'REDIS_TLS_KEY_FILE' };

describe('TlsPairFiles', () => {
  const first = signingCertificate({ kind: 'ec', cn: 'client one' });
  const next = signingCertificate({ kind: 'ec', cn: 'client two' });
  let dir: string;
  let cert: string;
  let key: string;
  const replace = (path: string, content: string): void => {
    writeFileSync(`${path}.new`, content);
    renameSync(`${path}.new`, path);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tls-pair-'));
    cert = join(dir, 'tls.crt');
    key = join(dir, 'tls.key');
    writeFileSync(cert, first.cert);
    writeFileSync(key, first.key);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses at start a pair that is missing, unparsable or not a pair, naming the variable', () => {
    expect(() => readTlsPair(join(dir, 'absent'), key, FIELDS)).toThrow(
      `REDIS_TLS_CERT_FILE: cannot read ${join(dir, 'absent')} (ENOENT)`,
    );
    writeFileSync(key, next.key);
    expect(() => readTlsPair(cert, key, FIELDS)).toThrow(
      'REDIS_TLS_KEY_FILE: is not the key of the certificate in REDIS_TLS_CERT_FILE',
    );
    writeFileSync(key, 'not a key');
    expect(() => readTlsPair(cert, key, FIELDS)).toThrow(
      'REDIS_TLS_KEY_FILE: holds no PEM private key',
    );
  });

  it('adopts a rotated pair once both halves match; a half-written pair keeps the last one, reported once', () => {
    const sut = new TlsPairFiles(cert, key, FIELDS);
    expect(sut.cert).toBe(first.cert.trim());
    expect(sut.recheck()).toBe('unchanged');

    replace(key, next.key);
    expect(sut.recheck()).toEqual({
      unusable: 'REDIS_TLS_KEY_FILE: is not the key of the certificate in REDIS_TLS_CERT_FILE',
    });
    expect(sut.recheck()).toBe('unchanged');
    expect(sut.cert).toBe(first.cert.trim());

    replace(cert, next.cert);
    expect(sut.recheck()).toBe('changed');
    expect(sut.cert).toBe(next.cert.trim());
    expect(sut.key).toBe(next.key.trim());
  });

  it('keeps the last pair while a file is missing', () => {
    const sut = new TlsPairFiles(cert, key, FIELDS);
    rmSync(key);
    expect(sut.recheck()).toBe('unchanged');
    expect(sut.key).toBe(first.key.trim());
  });
});
