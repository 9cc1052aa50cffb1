import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptionKey } from '@app/config';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT = 'v1';

export class TokenDecryptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenDecryptionError';
  }
}

/**
 * AES-256-GCM envelope for values at rest: a fresh IV per write, the key id stored with the
 * value so keys can rotate (the first key encrypts, every listed key decrypts), and the
 * caller's associated data (client, environment, expiry) authenticated but not stored.
 * Format: `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url parts).
 */
export class TokenCipher {
  private readonly byKid: Map<string, Buffer>;

  constructor(private readonly keys: readonly EncryptionKey[]) {
    if (keys.length === 0) throw new Error('TokenCipher needs at least one key');
    if (keys.some((k) => k.kid.includes('.'))) throw new Error('key ids must not contain "."');
    this.byKid = new Map(keys.map((k) => [k.kid, k.key]));
  }

  encrypt(plaintext: string, associatedData: string): string {
    const { kid, key } = this.keys[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [
      FORMAT,
      kid,
      iv.toString('base64url'),
      ciphertext.toString('base64url'),
      cipher.getAuthTag().toString('base64url'),
    ].join('.');
  }

  decrypt(envelope: string, associatedData: string): string {
    const parts = envelope.split('.');
    if (parts.length !== 5 || parts[0] !== FORMAT)
      throw new TokenDecryptionError('unknown value format');
    const [, kid, ivText, ctText, tagText] = parts;
    const key = this.byKid.get(kid);
    if (!key) throw new TokenDecryptionError(`unknown key id ${kid}`);
    const iv = Buffer.from(ivText, 'base64url');
    const tag = Buffer.from(tagText, 'base64url');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES)
      throw new TokenDecryptionError('malformed value');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([
        decipher.update(Buffer.from(ctText, 'base64url')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      throw new TokenDecryptionError('value failed authentication');
    }
  }
}
