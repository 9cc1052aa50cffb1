import { CLIENT_ASSERTION_TYPE } from './client-assertion';
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
 * go in the body (client_secret_post; private_key_jwt's signed `clientAssertion`) or in the
 * Authorization header (client_secret_basic), never both: RFC 6749 §2.3 forbids more than one
 * method per request. The client's own parameters follow: `audience`, each `resource`
 * (RFC 8707 §2 repeats the parameter) and `extraParams`, which the configuration loader has
 * already kept from overriding any of ours.
 */
export function buildTokenHttpRequest(
  req: TokenRequest,
  clientAssertion?: string,
): TokenHttpRequest {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (req.scope) form.set('scope', req.scope);
  const headers: Record<string, string> = {
    'Content-Type': 'application/x-www-form-urlencoded',
    Accept: 'application/json',
  };
  if (req.authMethod === 'client_secret_basic') {
    headers.Authorization = basicAuthorization(req.clientId, req.secret);
  } else if (req.authMethod === 'private_key_jwt') {
    if (clientAssertion === undefined) throw new TypeError('private_key_jwt needs an assertion');
    form.set('client_id', req.clientId);
    form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
    form.set('client_assertion', clientAssertion);
  } else if (
    req.authMethod === 'tls_client_auth' ||
    req.authMethod === 'self_signed_tls_client_auth'
  ) {
    // RFC 8705 §2: the certificate of the TLS connection authenticates; client_id names it.
    form.set('client_id', req.clientId);
  } else {
    form.set('client_id', req.clientId);
    form.set('client_secret', req.secret);
  }
  if (req.audience !== undefined) form.set('audience', req.audience);
  for (const resource of req.resources ?? []) form.append('resource', resource);
  for (const [name, value] of req.extraParams ?? []) {
    if (!form.has(name)) form.set(name, value);
  }
  return { headers, body: form.toString() };
}
