import { createHash, createHmac } from 'node:crypto';
import { secretFingerprint, secretFingerprintKey, tokenFingerprint } from './fingerprint';

describe('fingerprints', () => {
  it('names a token by the first 8 hex of its SHA-256', () => {
    expect(tokenFingerprint('abc')).toBe(
      createHash('sha256').update('abc').digest('hex').slice(0, 8),
    );
  });

  it('derives one key from an encryption key, so replicas sharing it agree', () => {
    const encryptionKey = Buffer.alloc(32, 9);
    const sut = secretFingerprintKey(encryptionKey);
    expect(sut).toEqual(secretFingerprintKey(Buffer.alloc(32, 9)));
    expect(sut).not.toEqual(secretFingerprintKey(Buffer.alloc(32, 8)));
    expect(secretFingerprint('s3cret', sut)).toMatch(/^[0-9a-f]{8}$/);
  });

  it.each([
    ['no encryption key', undefined],
    ['an empty one', Buffer.alloc(0)],
  ])('without an encryption key (%s) uses a random key each time, never a fixed one', (_c, key) => {
    const a = secretFingerprintKey(key);
    const b = secretFingerprintKey(key);
    expect(a).toHaveLength(32);
    expect(a).not.toEqual(b);
    const fixed = createHash('sha256').update('token-vendor/secret-fingerprint/v1').digest();
    expect(a).not.toEqual(fixed);
    expect(secretFingerprint('s3cret', a)).not.toBe(
      createHmac('sha256', fixed).update('s3cret').digest('hex').slice(0, 8),
    );
  });
});
