import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { SigningAlg } from './config.types';

/** What each signing algorithm needs of the key (RFC 7518 §3.1). */
const KEY_TYPE_OF: Record<SigningAlg, { type: string; curve?: string }> = {
  RS256: { type: 'rsa' },
  PS256: { type: 'rsa' },
  ES256: { type: 'ec', curve: 'prime256v1' },
};
/** RFC 7518 §3.3: RSA keys of at least 2048 bits. */
const MIN_RSA_BITS = 2048;

/**
 * A private_key_jwt client's key, from the text of its `privateKeyFile`: a PEM private key
 * (PKCS#8, or the PKCS#1 / SEC1 forms OpenSSL writes) or a private JWK. Throws an Error whose
 * message says what is wrong and never quotes the key.
 */
export function parsePrivateKey(text: string, alg: SigningAlg): KeyObject {
  let key: KeyObject;
  try {
    const trimmed = text.trim();
    key = trimmed.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(trimmed) as Record<string, string>, format: 'jwk' })
      : createPrivateKey({ key: trimmed, format: 'pem' });
  } catch {
    throw new Error('is not a PEM private key or a private JWK');
  }
  const wanted = KEY_TYPE_OF[alg];
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType !== wanted.type) {
    throw new Error(
      `holds a ${key.asymmetricKeyType ?? 'unknown'} key; ${alg} needs ${wanted.type}`,
    );
  }
  if (wanted.curve !== undefined && details.namedCurve !== wanted.curve) {
    throw new Error(`holds a key on ${details.namedCurve ?? 'another curve'}; ${alg} needs P-256`);
  }
  if (wanted.type === 'rsa' && (details.modulusLength ?? 0) < MIN_RSA_BITS) {
    throw new Error(`holds an RSA key shorter than ${MIN_RSA_BITS} bits`);
  }
  return key;
}
