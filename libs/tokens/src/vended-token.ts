import type { ClientConfig } from '@app/config';
import type { StoredToken } from '@app/token-store';

/** The body of a successful GET /tokens/:clientId (contract §6). */
export interface VendedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  expires_at: string;
  scope?: string;
  client_id: string;
  environment: string;
}

export function toVendedToken(client: ClientConfig, token: StoredToken, now: number): VendedToken {
  const body: VendedToken = {
    access_token: token.accessToken,
    token_type: 'Bearer',
    expires_in: Math.floor((token.expiresAt - now) / 1000),
    expires_at: new Date(token.expiresAt).toISOString(),
    client_id: client.clientId,
    environment: client.environment,
  };
  const scope = token.scope ?? client.scope;
  if (scope !== undefined) body.scope = scope;
  return body;
}
