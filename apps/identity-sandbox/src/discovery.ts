import type { IncomingMessage } from 'node:http';
import type { SandboxContext } from './sandbox-context';

export const TOKEN_PATH = '/connect/token';
export const DISCOVERY_PATH = '/.well-known/openid-configuration';
/** Where CAS (IdentityServer) publishes its keys. */
export const JWKS_PATH = '/.well-known/openid-configuration/jwks';

export interface DiscoveryDocument {
  issuer: string;
  token_endpoint: string;
  jwks_uri: string;
  grant_types_supported: string[];
  token_endpoint_auth_methods_supported: string[];
  scopes_supported: string[];
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
    token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
    scopes_supported: ctx.clients.allScopes(),
  };
}

function publicBaseUrl(host: string | undefined, fallback: string): string {
  // Only a plain host[:port] is trusted; anything odd falls back to the listening address.
  return host && /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)
    ? `http://${host}`
    : fallback;
}
