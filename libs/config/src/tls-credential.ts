import { X509Certificate, createPrivateKey } from 'node:crypto';

/** The PEM private key block of a credential (PKCS#8, PKCS#1 or SEC1). */
const KEY_BLOCK = /-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

/**
 * The credential of a tls_client_auth / self_signed_tls_client_auth client, as one string: the
 * certificate (chain) PEM, then the key PEM. One string, so it is read, compared, tried and
 * adopted on rotation exactly like a secret. Throws an Error that never quotes the key when the
 * two files do not make a pair, naming `fields` (the configuration's names by default).
 */
export function tlsCredentialOf(
  certPem: string,
  keyPem: string,
  fields: { cert: string; key: string } = { cert: 'clientCertFile', key: 'clientKeyFile' },
): string {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch {
    throw new Error(`${fields.cert}: holds no PEM certificate`);
  }
  let key;
  try {
    key = createPrivateKey({ key: keyPem, format: 'pem' });
  } catch {
    throw new Error(`${fields.key}: holds no PEM private key`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new Error(`${fields.key}: is not the key of the certificate in ${fields.cert}`);
  }
  return `${certPem.trim()}\n${keyPem.trim()}\n`;
}

/** The two halves of a credential made by tlsCredentialOf. */
export function splitTlsCredential(credential: string): { cert: string; key: string } {
  const key = KEY_BLOCK.exec(credential)?.[0] ?? '';
  return { cert: credential.replace(key, '').trim(), key };
}
