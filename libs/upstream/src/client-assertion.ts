import { X509Certificate, createHash, randomUUID } from 'node:crypto';
import { parsePrivateKey, type SigningAlg } from '@app/config';
import { SignJWT } from 'jose';

/** RFC 7523 §3 wants a short life; the README promises at most this. */
export const ASSERTION_LIFETIME_SECONDS = 60;
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface ClientAssertionInput {
  clientId: string;
  /** The token endpoint: the audience an IdP checks (OpenID Connect Core §9). */
  tokenUrl: string;
  /** The private key's text (PEM or JWK), as read from `privateKeyFile`. */
  privateKey: string;
  signingAlg: SigningAlg;
  keyId?: string;
  /**
   * The key's certificate (PEM), as read from `certificateFile`: the header then names it by
   * its thumbprints, which is how Entra ID finds the key (README "Identity providers").
   */
  certificate?: string;
  /** Clock ms. */
  now: number;
}

/**
 * RFC 7515 §4.1.8 `x5t#S256` and §4.1.7 `x5t`: base64url SHA-256 and SHA-1 of the certificate's
 * DER. Both are sent: current Entra ID reads `x5t#S256`, older tenants (and its older
 * documentation) `x5t`; an IdP reads the one it knows.
 */
export function certificateThumbprints(certificatePem: string): {
  'x5t#S256': string;
  x5t: string;
} {
  const der = new X509Certificate(certificatePem).raw;
  return {
    'x5t#S256': createHash('sha256').update(der).digest('base64url'),
    x5t: createHash('sha1').update(der).digest('base64url'),
  };
}

/**
 * The `client_assertion` of private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): `iss` and
 * `sub` are the client id, `aud` the token endpoint, a fresh `jti` per request (IdPs refuse a
 * replayed one, so every attempt signs anew), `exp` 60 s after `iat`. The header names the key
 * by `kid` (`keyId`) and, with a certificate, by its thumbprints. Signed by jose.
 */
export async function signClientAssertion(input: ClientAssertionInput): Promise<string> {
  let key;
  try {
    key = parsePrivateKey(input.privateKey, input.signingAlg);
  } catch (e) {
    // Never the key itself; the message says what kind of problem it is.
    throw new TypeError(`the private key of client "${input.clientId}" ${(e as Error).message}`);
  }
  let thumbprints = {};
  if (input.certificate !== undefined) {
    try {
      thumbprints = certificateThumbprints(input.certificate);
    } catch {
      throw new TypeError(`the certificate of client "${input.clientId}" is not a PEM certificate`);
    }
  }
  const iat = Math.floor(input.now / 1000);
  return new SignJWT({})
    .setProtectedHeader({
      alg: input.signingAlg,
      typ: 'JWT',
      ...thumbprints,
      ...(input.keyId !== undefined ? { kid: input.keyId } : {}),
    })
    .setIssuer(input.clientId)
    .setSubject(input.clientId)
    .setAudience(input.tokenUrl)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
    .sign(key);
}
