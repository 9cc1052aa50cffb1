import { randomUUID } from 'node:crypto';
import type { JwtSigner } from './jwt-signer';
import type { SandboxSettings } from './sandbox-context';

/** The body of a successful token response, in the order IdentityServer writes it. */
export interface TokenResponseBody {
  access_token: string;
  expires_in?: unknown;
  token_type: string;
  scope?: string;
}

/**
 * Mints a CAS-shaped access token. Times are whole seconds (JWT NumericDate); nbf = iat because
 * the token is usable at once, and the random jti makes every token distinct even when two are
 * minted within the same second for the same client.
 */
export function issueToken(
  signer: JwtSigner,
  settings: SandboxSettings,
  clientId: string,
  scopes: readonly string[],
  /** The requested `audience` and `resource`s (RFC 8707 §2.2), echoed as `aud`; else the default. */
  audiences: readonly string[] = [],
): TokenResponseBody {
  const iat = Math.floor(Date.now() / 1000);
  const accessToken = signer.sign({
    iss: settings.issuer,
    aud:
      audiences.length === 0
        ? settings.audience
        : audiences.length === 1
          ? audiences[0]
          : [...audiences],
    client_id: clientId,
    scope: [...scopes],
    nbf: iat,
    iat,
    exp: iat + settings.expiresIn,
    jti: randomUUID(),
  });
  const body: TokenResponseBody = {
    access_token: accessToken,
    expires_in: settings.expiresIn,
    token_type: 'Bearer',
  };
  if (scopes.length > 0) body.scope = scopes.join(' ');
  return body;
}

/**
 * The scopes to grant: all of the client's when none are asked for, otherwise the requested
 * ones (deduplicated, in request order) provided each is allowed; undefined means invalid_scope.
 */
export function grantScopes(
  requested: string | undefined,
  allowed: readonly string[],
): string[] | undefined {
  const wanted = [...new Set((requested ?? '').split(' ').filter((s) => s.length > 0))];
  if (wanted.length === 0) return [...allowed];
  return wanted.every((scope) => allowed.includes(scope)) ? wanted : undefined;
}
