/**
 * Public types of the identity sandbox. Everything here is re-exported by index.ts, the only
 * entry point other code and tests may import (`@app/identity-sandbox`).
 */

/** A client the sandbox knows: id, credential and the scopes it may ask for. */
export interface SandboxClient {
  clientId: string;
  /** The shared secret (client_secret_post / client_secret_basic). */
  secret?: string;
  /**
   * private_key_jwt: the client's public keys (PEM SPKI), against which its `client_assertion`
   * is verified (RFC 7523). A client may have a secret, keys, or both.
   */
  publicKeys?: string[];
  /**
   * private_key_jwt with certificate credentials (as Entra ID has them): the client's
   * certificates (PEM). An assertion whose header names a certificate by `x5t#S256` (SHA-256)
   * and/or `x5t` (SHA-1 of the DER, RFC 7515 §4.1.7-8) is verified with that certificate's key
   * alone, while the certificate is within its validity; an unknown thumbprint is
   * `invalid_client`. An assertion naming no certificate is verified with `publicKeys`.
   */
  assertionCertificates?: string[];
  /**
   * self_signed_tls_client_auth (RFC 8705 §2.2): the client's certificates (PEM), matched
   * exactly (by SHA-256 thumbprint) against the one it presents in the TLS handshake.
   */
  selfSignedCertificates?: string[];
  /**
   * tls_client_auth (RFC 8705 §2.1): the subject DN (e.g. `CN=my.client`) of the certificate
   * the client presents, which must chain to the sandbox's `tls.clientCa`.
   */
  tlsSubjectDn?: string;
  /** Scopes the client may request; none requested means all of these. Default: none. */
  scopes?: string[];
}

export interface SandboxOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default: the demo clients (DEMO_CLIENTS). */
  clients?: SandboxClient[];
  /** Seconds, sent as `expires_in` and used for the JWT `exp`. Default 1200 (a CAS token). */
  expiresIn?: number;
  /** JWT `iss` and discovery `issuer`. Default: the sandbox URL. */
  issuer?: string;
  /** JWT `aud` when the request names no `audience` or `resource`. Default 'cas-api'. */
  audience?: string;
  /**
   * The client authentication methods the sandbox accepts and lists in its discovery document
   * (token_endpoint_auth_methods_supported). Default: all it knows.
   */
  authMethods?: SandboxAuthMethod[];
  /**
   * Serve `/.well-known/openid-configuration` (default true). The same document is always
   * served at RFC 8414's `/.well-known/oauth-authorization-server`.
   */
  openidConfiguration?: boolean;
  /**
   * Serve HTTPS with this key and certificate (PEM) instead of plain HTTP. Client certificates
   * are requested (never required); `clientCa` is the CA that tls_client_auth certificates must
   * chain to. The discovery document then names `mtls_endpoint_aliases.token_endpoint`
   * (`/mtls/connect/token`, the same endpoint).
   */
  tls?: { key: string; cert: string; clientCa?: string };
  /**
   * Receives one structured entry per token request (never a secret or a token).
   * Default: nothing is logged, so tests stay quiet.
   */
  log?: (entry: SandboxLogEntry) => void;
}

export type FaultMode =
  | 'none'
  | 'status_500'
  | 'status_503'
  | 'status_429'
  | 'timeout'
  | 'slow'
  | 'reset'
  | 'html'
  | 'truncated_json'
  | 'no_access_token'
  | 'wrong_token_type'
  | 'invalid_client'
  | 'invalid_scope'
  | 'expires_in';

export interface Fault {
  mode: FaultMode;
  /** status_429 / status_503: seconds for Retry-After (429 defaults to 1; 503 sends none). */
  retryAfter?: number;
  /** slow: delay before a normal answer, in milliseconds (default 1000). */
  delayMs?: number;
  /** expires_in: the raw value put in the JSON (number, string, ...); null/undefined = omitted. */
  expiresIn?: unknown;
  /** How many token requests it applies to, then back to normal. Default: until cleared. */
  count?: number;
}

export interface SandboxStats {
  /** Every POST /connect/token, whatever came of it. */
  tokenRequests: number;
  /** Token requests per client id as claimed by the request (even when rejected or faulted). */
  byClient: Record<string, number>;
  /** Answers that carried a signed access token (including slow/wrong_token_type/expires_in faults). */
  issued: number;
  /** 4xx answers of the normal flow (bad client, scope, grant, request); injected faults are not counted here. */
  rejected: number;
  /** Token requests an injected fault applied to. */
  faulted: number;
}

/**
 * How the request authenticated. 'none': no client credentials at all; 'multiple': both the
 * Authorization header and client_secret in the body (rejected with invalid_request).
 */
export type SandboxAuthMethod =
  | 'client_secret_post'
  | 'client_secret_basic'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth'
  | 'none'
  | 'multiple';

/** One token request as the sandbox saw it. Never holds the secret or the Authorization header. */
export interface SandboxRequestRecord {
  /** The client id claimed by the request (undefined when it named none or it could not be decoded). */
  clientId?: string;
  authMethod: SandboxAuthMethod;
  /** The `scope` form field as sent. */
  scope?: string;
  /** The `grant_type` form field as sent. */
  grantType?: string;
  /** The `audience` form field as sent. */
  audience?: string;
  /** Every `resource` form field as sent (RFC 8707), in order. */
  resources?: string[];
  /** Form fields beyond the grant, client authentication, scope, audience and resource. */
  extraParams?: Record<string, string>;
  /** private_key_jwt: the claims of the client assertion as sent (it is single-use, no secret). */
  assertionClaims?: Record<string, unknown>;
  /** private_key_jwt: the assertion's protected header. */
  assertionHeader?: Record<string, unknown>;
  /** true when the request came to the mTLS alias of the token endpoint (RFC 8705 §5). */
  mtlsAlias?: boolean;
  /** The SHA-256 thumbprint (base64url) of the client certificate presented, if any. */
  clientCertificateThumbprint?: string;
  contentType?: string;
  accept?: string;
  acceptEncoding?: string;
  /** Date.now() when the request arrived. */
  at: number;
  /** HTTP status answered; undefined while pending or when no answer was given (reset, timeout). */
  status?: number;
  /** The fault applied to this request, if any. */
  fault?: FaultMode;
}

export interface SandboxLogEntry {
  msg: 'token request';
  clientId?: string;
  authMethod: SandboxAuthMethod;
  /** HTTP status, or undefined when no answer was given (reset, timeout, client gone). */
  status?: number;
  /** 'issued', the OAuth error code, or the fault mode applied. */
  outcome: string;
  fault?: FaultMode;
  durationMs: number;
}

/** A token the workload issuer should mint (POST /_sandbox/workload-tokens takes the same). */
export interface WorkloadTokenRequest {
  /** Kubernetes-shaped: the `kubernetes.io` claim and `sub` system:serviceaccount:<ns>:<sa>. */
  namespace?: string;
  serviceAccount?: string;
  /** The pod a bound token names (default: one made up); null for a token bound to no pod. */
  pod?: { name?: string; uid?: string } | null;
  /** `sub`; required when no namespace/serviceAccount is given (another OIDC workload). */
  subject?: string;
  /** `aud`; default ["token-vendor"]. */
  audience?: string | string[];
  /** Seconds until `exp` from now (negative: already expired). Default 3600. */
  expiresIn?: number;
  /** Seconds until `nbf` from now (positive: not yet valid). Default 0. */
  notBeforeIn?: number;
  /** `iss` other than the workload issuer's own (to test a wrong issuer). */
  issuer?: string;
}

/** The sandbox as a workload identity issuer (projected ServiceAccount tokens). */
export interface SandboxWorkloadIssuer {
  /** The `iss` of its tokens: the sandbox URL + /workload-issuer (discovery works from it). */
  readonly issuer: string;
  readonly jwksUri: string;
  /** The `kid` it signs with now. */
  kid(): Promise<string>;
  mint(request: WorkloadTokenRequest): Promise<string>;
  /** A new signing key; the old one stays in the JWKS unless keepPrevious is false. */
  rotateKey(keepPrevious?: boolean): Promise<string>;
  /** false: the JWKS and discovery answer 503 (an issuer that is down). */
  setAvailable(available: boolean): void;
  /** Date.now() of every JWKS request, oldest first. */
  jwksRequests(): number[];
}

export interface RunningSandbox {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** url + '/connect/token' */
  tokenUrl: string;
  stats(): SandboxStats;
  /** Same as POST /_sandbox/fault. Throws on an invalid fault. */
  setFault(fault: Fault): void;
  clearFault(): void;
  /** Rotation at the IdP: the old secret stops working at once. Adds the client if unknown. */
  setClientSecret(clientId: string, secret: string): void;
  /** Key rotation at the IdP: these public keys (PEM) replace the client's. Adds the client if unknown. */
  setClientKeys(clientId: string, publicKeys: string[]): void;
  /** Certificate rotation at the IdP (self_signed_tls_client_auth): these replace the client's. */
  setClientCertificates(clientId: string, certificates: string[]): void;
  /**
   * Certificate-credential rotation at the IdP (private_key_jwt naming `x5t#S256` / `x5t`):
   * these certificates (PEM) replace the client's. Adds the client if unknown.
   */
  setClientAssertionCertificates(clientId: string, certificates: string[]): void;
  setExpiresIn(seconds: number): void;
  /** Zeroes the stats and forgets the recorded requests (the fault stays; see POST /_sandbox/reset). */
  resetStats(): void;
  /** The last token requests (at most 100), oldest first. */
  requests(): SandboxRequestRecord[];
  /** The workload identity issuer (tokens shaped like projected ServiceAccount tokens). */
  workloadIssuer: SandboxWorkloadIssuer;
  /** Closes the server and destroys open sockets (including hung 'timeout' ones). */
  close(): Promise<void>;
}
