import { createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * A short, non-reversible name for a token in logs: lets ops match an audit line to a
 * caller's complaint without the token ever being written down. 8 hex of SHA-256 is
 * far too little to search for a token with, and enough to tell two apart.
 */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 8);
}

/**
 * Fingerprint of a secret for the admin view: keyed (HMAC), so the short value cannot be
 * checked against a dictionary of likely secrets without the key.
 */
export function secretFingerprint(secret: string, key: Buffer | string): string {
  return createHmac('sha256', key).update(secret, 'utf8').digest('hex').slice(0, 8);
}

/**
 * The key of secret fingerprints. With Redis there is an encryption key, shared by the fleet:
 * the key is derived from it, so replicas show the same fingerprint for the same secret. In
 * memory mode (one replica, no encryption key) it is 32 random bytes made once per process:
 * a fixed key would let anyone who sees a fingerprint test guessed secrets against it offline.
 */
export function secretFingerprintKey(encryptionKey: Buffer | undefined): Buffer {
  if (!encryptionKey || encryptionKey.length === 0) return randomBytes(32);
  return createHash('sha256')
    .update('token-vendor/secret-fingerprint/v1')
    .update(encryptionKey)
    .digest();
}
