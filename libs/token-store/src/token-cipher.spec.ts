import type { EncryptionKey } from '@app/config';
import { TokenCipher, TokenDecryptionError } from './token-cipher';

const OLD: EncryptionKey = { kid: 'old', key: Buffer.alloc(32, 1) };
const NEW: EncryptionKey = { kid: 'new', key: Buffer.alloc(32, 2) };
const PLAINTEXT = JSON.stringify({ a: 'eyJhbGciOiJSUzI1NiJ9.payload.signature', r: 1 });
const AD = 'token-vendor/v1|uat/api.client|1795773600000';

/** Flips one bit in the decoded bytes of one base64url part of the envelope. */
function tamper(envelope: string, part: number, byte = 0): string {
  const parts = envelope.split('.');
  const bytes = Buffer.from(parts[part], 'base64url');
  bytes[byte] ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

function decryptionErrorOf(fn: () => unknown): TokenDecryptionError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TokenDecryptionError) return e;
    throw e;
  }
  throw new Error('expected a TokenDecryptionError');
}

describe('TokenCipher', () => {
  let sut: TokenCipher;

  beforeEach(() => {
    sut = new TokenCipher([NEW, OLD]);
  });

  it.each([
    ['a token record', PLAINTEXT],
    ['an empty string', ''],
    ['non-ASCII text', 'jeton à durée limitée ✓'],
    ['a 16 KiB value', 'x'.repeat(16 * 1024)],
  ])('round-trips %s', (_name, plaintext) => {
    expect(sut.decrypt(sut.encrypt(plaintext, AD), AD)).toBe(plaintext);
  });

  it('writes v1.<kid>.<iv>.<ciphertext>.<tag> with a 12-byte IV and a 16-byte tag', () => {
    const [format, kid, iv, ciphertext, tag] = sut.encrypt(PLAINTEXT, AD).split('.');

    expect({
      format,
      kid,
      iv: Buffer.from(iv, 'base64url').length,
      ciphertext: Buffer.from(ciphertext, 'base64url').length,
      tag: Buffer.from(tag, 'base64url').length,
    }).toEqual({ format: 'v1', kid: 'new', iv: 12, ciphertext: PLAINTEXT.length, tag: 16 });
  });

  it('uses a fresh IV for every write', () => {
    const first = sut.encrypt(PLAINTEXT, AD).split('.');
    const second = sut.encrypt(PLAINTEXT, AD).split('.');

    expect(first[2]).not.toBe(second[2]);
    expect(first[3]).not.toBe(second[3]);
  });

  it('keeps neither the plaintext nor the associated data in the envelope', () => {
    const envelope = sut.encrypt(PLAINTEXT, AD);

    for (const leak of [
      PLAINTEXT,
      'eyJhbGciOiJSUzI1NiJ9',
      Buffer.from(PLAINTEXT).toString('base64url'),
      Buffer.from(PLAINTEXT).toString('base64'),
      'uat/api.client',
    ]) {
      expect(envelope).not.toContain(leak);
    }
  });

  it.each([
    ['another client', 'token-vendor/v1|uat/other.client|1795773600000'],
    ['another environment', 'token-vendor/v1|production/api.client|1795773600000'],
    ['another expiry', 'token-vendor/v1|uat/api.client|1795773600001'],
    ['no associated data', ''],
  ])('rejects a value read with the associated data of %s', (_name, otherAd) => {
    const envelope = sut.encrypt(PLAINTEXT, AD);

    expect(decryptionErrorOf(() => sut.decrypt(envelope, otherAd)).message).toBe(
      'value failed authentication',
    );
  });

  it.each<[string, (envelope: string) => string, string]>([
    ['a flipped ciphertext bit', (e) => tamper(e, 3), 'value failed authentication'],
    [
      'a flipped last ciphertext bit',
      (e) => tamper(e, 3, PLAINTEXT.length - 1),
      'value failed authentication',
    ],
    ['a flipped tag bit', (e) => tamper(e, 4), 'value failed authentication'],
    ['a flipped IV bit', (e) => tamper(e, 2), 'value failed authentication'],
    [
      'a truncated tag',
      (e) => {
        const parts = e.split('.');
        parts[4] = Buffer.from(parts[4], 'base64url').subarray(0, 12).toString('base64url');
        return parts.join('.');
      },
      'malformed value',
    ],
    [
      'a truncated ciphertext',
      (e) => {
        const parts = e.split('.');
        parts[3] = parts[3].slice(0, -4);
        return parts.join('.');
      },
      'value failed authentication',
    ],
    ['another format version', (e) => e.replace(/^v1\./, 'v2.'), 'unknown value format'],
    ['a missing part', (e) => e.split('.').slice(0, 4).join('.'), 'unknown value format'],
    ['plain text', () => PLAINTEXT, 'unknown value format'],
    ['an unknown key id', (e) => e.replace('.new.', '.gone.'), 'unknown key id gone'],
  ])('rejects %s', (_name, change, message) => {
    const envelope = change(sut.encrypt(PLAINTEXT, AD));

    expect(decryptionErrorOf(() => sut.decrypt(envelope, AD)).message).toBe(message);
  });

  it('rejects a value sealed under the same kid but another key', () => {
    const impostor = new TokenCipher([{ kid: 'new', key: Buffer.alloc(32, 9) }]);

    const envelope = impostor.encrypt(PLAINTEXT, AD);

    expect(decryptionErrorOf(() => sut.decrypt(envelope, AD)).message).toBe(
      'value failed authentication',
    );
  });

  describe('key rotation', () => {
    it('reads a value written with the old first key once the keys are [new, old]', () => {
      const before = new TokenCipher([OLD]);
      const envelope = before.encrypt(PLAINTEXT, AD);

      const after = new TokenCipher([NEW, OLD]);

      expect(envelope.split('.')[1]).toBe('old');
      expect(after.decrypt(envelope, AD)).toBe(PLAINTEXT);
    });

    it('writes with the new first key, which a replica still on the old key cannot read', () => {
      const after = new TokenCipher([NEW, OLD]);
      const envelope = after.encrypt(PLAINTEXT, AD);

      expect(envelope.split('.')[1]).toBe('new');
      expect(decryptionErrorOf(() => new TokenCipher([OLD]).decrypt(envelope, AD)).message).toBe(
        'unknown key id new',
      );
    });

    it('stops reading values of a key once it is dropped', () => {
      const envelope = new TokenCipher([OLD]).encrypt(PLAINTEXT, AD);

      expect(decryptionErrorOf(() => new TokenCipher([NEW]).decrypt(envelope, AD)).message).toBe(
        'unknown key id old',
      );
    });
  });

  it('refuses to be built without a key', () => {
    expect(() => new TokenCipher([])).toThrow('TokenCipher needs at least one key');
  });
});
