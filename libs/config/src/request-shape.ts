import type { AuthMethod, ClientConfig, EnvironmentConfig, SigningAlg } from './config.types';

/**
 * Everything in a client's configuration that shapes the token it gets from the IdP: where the
 * request goes, how the client authenticates and which parameters it sends. A token fetched
 * under one shape does not fit another (another audience, resource or scope is another token),
 * so a stored token is bound to this shape. The credential itself (secret, key) is not part of
 * it: a rotated credential obtains the same token.
 */
export interface RequestShape {
  readonly environment: string;
  readonly clientId: string;
  /** The configured token endpoint, or (discovery) the issuer it is found from. */
  readonly tokenUrl?: string;
  readonly issuer?: string;
  readonly authMethod: AuthMethod;
  readonly keyId?: string;
  readonly signingAlg?: SigningAlg;
  /** The assertion names its certificate (`certificateFile` set; not its path). */
  readonly assertionCertificate?: true;
  readonly scope?: string;
  readonly audience?: string;
  readonly resources: readonly string[];
  /** [name, value] pairs sorted by name, so equal maps give equal shapes. */
  readonly extraParams: readonly (readonly [string, string])[];
}

/** The request shape of a client under its environment; pure, and JSON-stable field order. */
export function requestShapeOf(client: ClientConfig, environment: EnvironmentConfig): RequestShape {
  return {
    environment: client.environment,
    clientId: client.clientId,
    ...(environment.tokenUrl !== undefined ? { tokenUrl: environment.tokenUrl } : {}),
    ...(environment.issuer !== undefined ? { issuer: environment.issuer } : {}),
    authMethod: client.authMethod,
    ...(client.keyId !== undefined ? { keyId: client.keyId } : {}),
    ...(client.signingAlg !== undefined ? { signingAlg: client.signingAlg } : {}),
    ...(client.assertionCertificate ? { assertionCertificate: true as const } : {}),
    ...(client.scope !== undefined ? { scope: client.scope } : {}),
    ...(client.audience !== undefined ? { audience: client.audience } : {}),
    resources: [...(client.resources ?? [])],
    extraParams: [...(client.extraParams ?? new Map<string, string>()).entries()].sort(
      ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0),
    ),
  };
}
