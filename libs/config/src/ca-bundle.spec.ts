import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaBundle } from './ca-bundle';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

describe('readCaBundle', () => {
  const first = signingCertificate({ kind: 'ec', cn: 'CA one' }).cert;
  const second = signingCertificate({ kind: 'ec', cn: 'CA two' }).cert;
  let dir: string;
  let n = 0;
  const file = (content: string): string => {
    const path = join(dir, `ca-${n++}.pem`);
    writeFileSync(path, content);
    return path;
  };

  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'ca-bundle-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('returns a bundle whose every certificate parses, with text between them (a system bundle’s comments)', () => {
    const bundle = `# Issuer: CA one\n${first}\n# Issuer: CA two\n${second}`;
    expect(readCaBundle(file(bundle))).toBe(bundle);
  });

  it('refuses a file with no certificate block', () => {
    const path = file('not a certificate\n');
    expect(() => readCaBundle(path)).toThrow(`${path} holds no PEM certificate`);
  });

  it('refuses a bundle cut off inside a later certificate, instead of trusting the first part', () => {
    const cut = `${first}${second.slice(0, second.length / 2)}`;
    const path = file(cut);
    expect(() => readCaBundle(path)).toThrow(
      `${path}: certificate 2 of 2 cannot be parsed (cut off or damaged)`,
    );
    const justBegun = file(`${first}-----BEGIN CERTIFICATE-----\n`);
    expect(() => readCaBundle(justBegun)).toThrow(
      `${justBegun}: certificate 2 of 2 cannot be parsed`,
    );
  });

  it('refuses a block whose END is missing when another certificate follows', () => {
    const withoutEnd = first.replace('-----END CERTIFICATE-----', '');
    const path = file(`${withoutEnd}${second}`);
    expect(() => readCaBundle(path)).toThrow(`${path}: certificate 1 of 2 cannot be parsed`);
  });

  it('refuses a damaged certificate in the middle of a bundle', () => {
    const lines = second.split('\n');
    lines[2] = lines[2].replace(/[A-Za-z]/g, 'A');
    const path = file(`${first}${lines.join('\n')}${first}`);
    expect(() => readCaBundle(path)).toThrow(`${path}: certificate 2 of 3 cannot be parsed`);
  });
});
