import { createHash } from 'node:crypto';
import { requestShapeOf, type ClientConfig, type EnvironmentConfig } from '@app/config';

/** Hex characters of the fingerprint kept (64 bits: a configuration change, not an attack). */
const SHAPE_HEX = 16;

/**
 * The fingerprint of a client's token request shape: the same on every replica configured alike.
 * The fields are `requestShapeOf`'s (one list, in libs/config): everything that decides which
 * token the IdP issues (token URL or issuer, scope, auth method and key id, audience, resource,
 * extra parameters, client, environment), never the credential, so a rotated secret gets the
 * same token. A stored token is bound to it (README "A token belongs to its configuration").
 */
export function tokenRequestShape(client: ClientConfig, environment: EnvironmentConfig): string {
  return createHash('sha256')
    .update(`token-request-shape/v2\n${JSON.stringify(requestShapeOf(client, environment))}`)
    .digest('hex')
    .slice(0, SHAPE_HEX);
}
