/** How the client proves its identity at the token endpoint (RFC 6749 §2.3.1). */
export type AuthMethod = 'client_secret_post' | 'client_secret_basic';

/** One client-credentials grant (RFC 6749 §4.4) against one environment's token endpoint. */
export interface TokenRequest {
  environment: string;
  clientId: string;
  secret: string;
  /** Sent as `scope=` when set; the IdP's default scope applies otherwise. */
  scope?: string;
  authMethod: AuthMethod;
  tokenUrl: string;
  /** Budget of ONE attempt (connect, send, wait and read the answer); retries get their own. */
  timeoutMs: number;
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
