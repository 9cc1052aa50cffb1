import { randomUUID } from 'node:crypto';
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
  /** Clock ms. */
  now: number;
}

/**
 * The `client_assertion` of private_key_jwt (RFC 7523 §2.2, OpenID Connect Core §9): `iss` and
 * `sub` are the client id, `aud` the token endpoint, a fresh `jti` per request (IdPs refuse a
 * replayed one, so every attempt signs anew), `exp` 60 s after `iat`. Signed by jose.
 */
export async function signClientAssertion(input: ClientAssertionInput): Promise<string> {
  let key;
  try {
    key = parsePrivateKey(input.privateKey, input.signingAlg);
  } catch (e) {
    // Never the key itself; the message says what kind of problem it is.
    throw new TypeError(`the private key of client "${input.clientId}" ${(e as Error).message}`);
  }
  const iat = Math.floor(input.now / 1000);
  return new SignJWT({})
    .setProtectedHeader({
      alg: input.signingAlg,
      typ: 'JWT',
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
