import { createHash } from 'node:crypto';
import type { ClientConfig, EnvironmentConfig } from '@app/config';

/**
 * The fields of a token request that decide which token the IdP issues, by name. A stored
 * token is bound to their fingerprint, so a replica never serves a token fetched under another
 * configuration (see README "A token belongs to its configuration"). The secret is never one
 * of them: a rotated secret gets the same token. A new request field is one line here.
 */
const SHAPE_FIELDS: readonly (readonly [
  string,
  (client: ClientConfig, environment: EnvironmentConfig) => unknown,
])[] = [
  ['environment', (c) => c.environment],
  ['clientId', (c) => c.clientId],
  ['tokenUrl', (_c, e) => e.tokenUrl],
  ['scope', (c) => c.scope ?? null],
  ['authMethod', (c) => c.authMethod],
];

/** Hex characters of the fingerprint kept (64 bits: a configuration change, not an attack). */
const SHAPE_HEX = 16;

/** The fingerprint of a client's token request shape: the same on every replica configured alike. */
export function tokenRequestShape(client: ClientConfig, environment: EnvironmentConfig): string {
  const fields = SHAPE_FIELDS.map(([name, read]) => [name, read(client, environment) ?? null]);
  return createHash('sha256')
    .update(`token-request-shape/v1\n${JSON.stringify(fields)}`)
    .digest('hex')
    .slice(0, SHAPE_HEX);
}
