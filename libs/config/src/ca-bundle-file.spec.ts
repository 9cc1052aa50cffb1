import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaBundleFile } from './ca-bundle-file';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

describe('CaBundleFile', () => {
  const first = signingCertificate({ kind: 'ec', cn: 'first CA' }).cert;
  const second = signingCertificate({ kind: 'ec', cn: 'second CA' }).cert;
  let dir: string;
  let path: string;

  /** Replaced the way an operator or the kubelet does: written beside it, renamed over it. */
  const replace = (content: string): void => {
    writeFileSync(`${path}.new`, content);
    renameSync(`${path}.new`, path);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ca-bundle-file-'));
    path = join(dir, 'ca.pem');
    writeFileSync(path, first);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses at start a file that is missing or holds no certificate', () => {
    expect(() => new CaBundleFile(join(dir, 'absent.pem'))).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
    writeFileSync(path, 'not a certificate\n');
    expect(() => new CaBundleFile(path)).toThrow(`${path} holds no PEM certificate`);
  });

  it('adopts a replaced bundle, and says so once', () => {
    const sut = new CaBundleFile(path);
    const digest = sut.digest;
    expect(sut.pem).toBe(first);
    expect(sut.recheck()).toBe('unchanged');

    replace(second);
    expect(sut.recheck()).toBe('changed');
    expect(sut.pem).toBe(second);
    expect(sut.digest).not.toBe(digest);
    expect(sut.recheck()).toBe('unchanged');
  });

  it('calls the same bundle in a new file unchanged (the Kubernetes ..data swap of an equal secret)', () => {
    const sut = new CaBundleFile(path);
    replace(first);
    expect(sut.recheck()).toBe('unchanged');
    expect(sut.pem).toBe(first);
  });

  it('keeps the last bundle while the file is missing or holds no certificate, and reports the latter once', () => {
    const sut = new CaBundleFile(path);
    rmSync(path);
    expect(sut.recheck()).toBe('unchanged');
    expect(sut.pem).toBe(first);

    writeFileSync(path, 'half-written\n');
    expect(sut.recheck()).toEqual({ unusable: `${path} holds no PEM certificate` });
    expect(sut.recheck()).toBe('unchanged'); // not read again until it changes
    expect(sut.pem).toBe(first);

    replace(second);
    expect(sut.recheck()).toBe('changed');
    expect(sut.pem).toBe(second);
  });
});
