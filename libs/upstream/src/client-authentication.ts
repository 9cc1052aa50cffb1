import type { TokenRequest } from './token-request';

/**
 * application/x-www-form-urlencoded encoding of one value, exactly as URLSearchParams encodes
 * form bodies (space → '+', everything but alphanumerics and `*-._` percent-encoded as UTF-8).
 */
export function formUrlEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * The `Authorization` header value for client_secret_basic. RFC 6749 §2.3.1: the client id
 * and secret are form-urlencoded BEFORE being joined with ':' and base64-encoded, so a ':'
 * inside the id cannot shift the split point and non-ASCII survives as UTF-8. (Plain RFC 7617
 * Basic skips that step; IdentityServer, Keycloak and Entra ID decode per RFC 6749.)
 */
export function basicAuthorization(clientId: string, secret: string): string {
  const credentials = `${formUrlEncode(clientId)}:${formUrlEncode(secret)}`;
  return `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
}

export interface TokenHttpRequest {
  headers: Record<string, string>;
  body: string;
}

/**
 * Headers and form body of the client-credentials grant (RFC 6749 §4.4.2). The credentials
 * go either in the body (client_secret_post) or in the Authorization header
 * (client_secret_basic), never both: RFC 6749 §2.3 forbids more than one method per request.
 */
export function buildTokenHttpRequest(req: TokenRequest): TokenHttpRequest {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (req.scope) form.set('scope', req.scope);
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
  };
  if (req.authMethod === 'client_secret_basic') {
    headers.Authorization = basicAuthorization(req.clientId, req.secret);
  } else {
    form.set('client_id', req.clientId);
    form.set('client_secret', req.secret);
  }
  return { headers, body: form.toString() };
}
