import { X509Certificate } from 'node:crypto';
import type { ClientConfig, SigningAlg } from './config.types';
import { parsePrivateKey } from './private-key';
import { splitTlsCredential } from './tls-credential';

/** One PEM certificate block. */
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** The start of any PEM block (RFC 7468 §2). */
const ANY_BLOCK = /-----BEGIN [^-\r\n]+-----/g;
/** A credential made by signingCredentialOf: the certificate block first, then the key. */
const LEADING_CERTIFICATE = /^(-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----)\n/;

/**
 * The credential of a private_key_jwt client with a `certificateFile` (README "Identity
 * providers"), as one string: the certificate PEM, then the key's text (PEM or JWK). One string,
 * so the pair is read, compared, tried and adopted on rotation exactly like a secret, and a new
 * certificate never goes out with the old key. Throws an Error whose message starts with the
 * field at fault (`certificateFile: ...`, `privateKeyFile: ...`) and never quotes the key.
 */
export function signingCredentialOf(certText: string, keyText: string, alg: SigningAlg): string {
  const blocks = certText.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length > 1 || (certText.match(ANY_BLOCK) ?? []).length > blocks.length) {
    // The IdP names the key by this one certificate's thumbprint: a chain or a key beside it
    // would leave open which certificate is meant (or put a key where a certificate belongs).
    throw new Error(
      "certificateFile: must hold exactly one PEM certificate (the signing key's) and no other PEM block",
    );
  }
  // Text around the block is ignored (RFC 7468 §2), such as the "Bag Attributes" lines of a
  // certificate exported from a PKCS#12 file by `openssl pkcs12 -nokeys`: only the block is kept.
  const certificatePem = blocks[0] ?? certText.trim();
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch {
    throw new Error('certificateFile: holds no PEM certificate');
  }
  let key;
  try {
    key = parsePrivateKey(keyText, alg);
  } catch (e) {
    throw new Error(`privateKeyFile: ${(e as Error).message}`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new Error('certificateFile: does not match privateKeyFile');
  }
  return `${certificatePem}\n${keyText.trim()}`;
}

/**
 * The two halves of a credential made by signingCredentialOf. A credential without a leading
 * certificate (a key alone, as a client without `certificateFile` has) is all key.
 */
export function splitSigningCredential(credential: string): {
  certificate?: string;
  privateKey: string;
} {
  const leading = LEADING_CERTIFICATE.exec(credential);
  if (!leading) return { privateKey: credential };
  return { certificate: leading[1], privateKey: credential.slice(leading[0].length) };
}

/**
 * The certificate a client's credential holds, if its method uses one: the `certificateFile` of
 * a private_key_jwt client, the leaf of a tls_client_auth / self_signed_tls_client_auth client's
 * `clientCertFile`. Undefined for a shared secret or a key alone (and for text that does not
 * parse, which the readers never let in).
 */
export function credentialCertificate(
  client: ClientConfig,
  credential: string,
): { field: 'certificateFile' | 'clientCertFile'; certificate: X509Certificate } | undefined {
  const source = client.secretSource;
  let pem: string | undefined;
  let field: 'certificateFile' | 'clientCertFile';
  if (source.kind === 'tls') {
    pem = splitTlsCredential(credential).cert;
    field = 'clientCertFile';
  } else if (client.assertionCertificate) {
    pem = splitSigningCredential(credential).certificate;
    field = 'certificateFile';
  } else {
    return undefined;
  }
  if (!pem) return undefined;
  try {
    return { field, certificate: new X509Certificate(pem) };
  } catch {
    return undefined;
  }
}
