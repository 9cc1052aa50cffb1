import type { IncomingMessage } from 'node:http';
import { ASSERTION_ALGORITHMS } from './client-registry';
import type { SandboxContext } from './sandbox-context';

export const TOKEN_PATH = '/connect/token';
/** RFC 8705 §5: the token endpoint's alias for certificate-authenticated clients. */
export const MTLS_TOKEN_PATH = '/mtls/connect/token';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** RFC 8414 §3: authorization server metadata (for an issuer without a path). */
export const OAUTH_METADATA_PATH = '/.well-known/oauth-authorization-server';
/** Every client authentication method the sandbox can check. */
export const SANDBOX_AUTH_METHODS = [
  'client_secret_post',
  'client_secret_basic',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
];
/** Where CAS (IdentityServer) publishes its keys. */
export const JWKS_PATH = '/.well-known/openid-configuration/jwks';

export interface DiscoveryDocument {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  grant_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  token_endpoint_auth_signing_alg_values_supported: string[];
  scopes_supported: string[];
  mtls_endpoint_aliases?: { token_endpoint: string };
  tls_client_certificate_bound_access_tokens?: boolean;
}

/**
 * The audiences a client assertion may name (OpenID Connect Core §9 says the token endpoint;
 * RFC 7523 and most IdPs also take the issuer): the endpoint as the client addressed it, as
 * the sandbox knows itself, and the issuer.
 */
export function assertionAudiences(ctx: SandboxContext, req: IncomingMessage): string[] {
  const base = publicBaseUrl(req.headers.host, ctx.settings.url);
  return [
    ...new Set([`${base}${TOKEN_PATH}`, `${ctx.settings.url}${TOKEN_PATH}`, ctx.settings.issuer]),
  ];
}

/**
 * The OpenID discovery document. Endpoints are built from the Host the client used, as
 * IdentityServer does, so the same sandbox works as `localhost:4000` from the host and as
 * `identity-sandbox:4000` inside docker-compose; the issuer stays the configured one.
 */
export function discoveryDocument(ctx: SandboxContext, req: IncomingMessage): DiscoveryDocument {
  const base = publicBaseUrl(req.headers.host, ctx.settings.url);
  return {
    issuer: ctx.settings.issuer,
    token_endpoint: `${base}${TOKEN_PATH}`,
    jwks_uri: `${base}${JWKS_PATH}`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: [...ctx.settings.authMethods],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    scopes_supported: ctx.clients.allScopes(),
    ...(base.startsWith('https:')
      ? {
          mtls_endpoint_aliases: { token_endpoint: `${base}${MTLS_TOKEN_PATH}` },
          tls_client_certificate_bound_access_tokens: true,
        }
      : {}),
  };
}

function publicBaseUrl(host: string | undefined, fallback: string): string {
  // Only a plain host[:port] is trusted; anything odd falls back to the listening address.
  const scheme = fallback.startsWith('https:') ? 'https' : 'http';
  return host && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
    ? `${scheme}://${host}`
    : fallback;
}
