import type { AuthMethod, SigningAlg } from '@app/config';

export type { AuthMethod, SigningAlg };

/** One client-credentials grant (RFC 6749 §4.4) against one environment's token endpoint. */
export interface TokenRequest {
  environment: string;
  clientId: string;
  /**
   * The credential: the shared secret (client_secret_*), or the text of the private key
   * (private_key_jwt: PEM or JWK) the client assertion is signed with, preceded by the key's
   * certificate PEM when `assertionCertificate` is set.
   */
  secret: string;
  /** Sent as `scope=` when set; the IdP's default scope applies otherwise. */
  scope?: string;
  authMethod: AuthMethod;
  /** The token endpoint; absent for a discovery environment (found from its `issuer`). */
  tokenUrl?: string;
  /** Budget of ONE attempt (connect, send, wait and read the answer); retries get their own. */
  timeoutMs: number;
  /** private_key_jwt: the assertion's `kid` header. */
  keyId?: string;
  /** private_key_jwt: default RS256. */
  signingAlg?: SigningAlg;
  /** private_key_jwt: the assertion's header names the credential's certificate (`x5t#S256`, `x5t`). */
  assertionCertificate?: boolean;
  /** Sent as `audience=`. */
  audience?: string;
  /** Each sent as `resource=` (RFC 8707). */
  resources?: readonly string[];
  /** Further form parameters, checked at configuration load (none overrides ours). */
  extraParams?: ReadonlyMap<string, string>;
  /** PEM bundle of extra CAs trusted for this IdP (the environment's caFile). */
  caFile?: string;
}

/** A validated token answer: everything here has passed the checks in token-response.parser.ts. */
export interface IssuedToken {
  accessToken: string;
  tokenType: 'Bearer';
  /** The scope the IdP granted (the answer's `scope`), else the requested one. */
  scope?: string;
  /**
   * Monotonic clock ms when the successful request was SENT: expiry is counted from here
   * (README "Which clock decides what").
   */
  requestedAt: number;
  /** Monotonic clock ms: requestedAt + lifetimeSeconds * 1000. */
  expiresAt: number;
  /** Whole seconds, after the expires_in rule (expires-in.rule.ts). */
  lifetimeSeconds: number;
}

export interface FetchOptions {
  /** Attempts in total, first one included (default DEFAULT_MAX_ATTEMPTS). */
  maxAttempts?: number;
  /** Aborts the attempt in flight and any backoff sleep; the promise rejects with its reason. */
  signal?: AbortSignal;
}
