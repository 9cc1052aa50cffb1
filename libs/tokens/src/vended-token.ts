import type { Clock } from '@app/clock';
import type { ClientConfig } from '@app/config';
import type { StoredToken } from '@app/token-store';

/** The body of a successful GET /tokens/:clientId (README "API"). */
export interface VendedToken {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  expires_at: string;
  scope?: string;
  client_id: string;
  environment: string;
}

/**
 * The answer for a held token. Both times come from its remaining life on this replica's
 * monotonic clock; `expires_at` is that remaining life added to this replica's wall clock, for
 * display only (README "Which clock decides what").
 */
export function toVendedToken(client: ClientConfig, token: StoredToken, clock: Clock): VendedToken {
  const remainingMs = token.expiresAt - clock.monotonic();
  const body: VendedToken = {
    access_token: token.accessToken,
    token_type: 'Bearer',
    expires_in: Math.floor(remainingMs / 1000),
    expires_at: new Date(clock.now() + remainingMs).toISOString(),
    client_id: client.clientId,
    environment: client.environment,
  };
  const scope = token.scope ?? client.scope;
  if (scope !== undefined) body.scope = scope;
  return body;
}
