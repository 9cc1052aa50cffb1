import { createHash, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A public signing key as published in the JWKS document. */
export interface PublicJwk {
  kty: string;
  n: string;
  e: string;
  kid: string;
  alg: 'RS256';
  use: 'sig';
}

export interface JwtHeader {
  alg: 'RS256';
  typ: 'JWT';
  kid: string;
}

/** The claims of a CAS access token (scope is an array there, not a space-separated string). */
export interface AccessTokenClaims {
  iss: string;
  aud: string | string[];
  client_id: string;
  scope: string[];
  nbf: number;
  iat: number;
  exp: number;
  jti: string;
}

export function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

/**
 * Signs RS256 JWTs with a key pair made at start. A fresh key per sandbox keeps test runs
 * independent; nothing outside the process can have a copy of the private key.
 */
export class JwtSigner {
  private constructor(
    private readonly privateKey: KeyObject,
    readonly publicJwk: PublicJwk,
  ) {}

  static async create(): Promise<JwtSigner> {
    // Async generation: a 2048-bit key takes tens of milliseconds and must not block the loop.
    const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') {
      throw new Error('RSA public key export did not yield n and e');
    }
    return new JwtSigner(privateKey, {
      kty: 'RSA',
      n: jwk.n,
      e: jwk.e,
      kid: rsaThumbprint(jwk.e, jwk.n),
      alg: 'RS256',
      use: 'sig',
    });
  }

  get kid(): string {
    return this.publicJwk.kid;
  }

  sign(claims: AccessTokenClaims): string {
    return this.signPayload(claims);
  }

  /** Signs any claims (the workload issuer's ServiceAccount-shaped tokens use this too). */
  signPayload(claims: object): string {
    const header: JwtHeader = { alg: 'RS256', typ: 'JWT', kid: this.kid };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('RSA-SHA256', Buffer.from(signingInput), this.privateKey);
    return `${signingInput}.${base64url(signature)}`;
  }

  jwks(): { keys: PublicJwk[] } {
    return { keys: [{ ...this.publicJwk }] };
  }
}

/** RFC 7638 JWK thumbprint: a stable kid derived from the key itself. */
function rsaThumbprint(e: string, n: string): string {
  // Members in lexicographic order, no whitespace, as the RFC requires.
  const canonical = JSON.stringify({ e, kty: 'RSA', n });
  return createHash('sha256').update(canonical).digest('base64url');
}
