/** The validated, read-only configuration the rest of the service sees. */

/** How a client proves its identity at the token endpoint (README "Identity providers"). */
export type AuthMethod =
  | 'client_secret_post'
  | 'client_secret_basic'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth';

/** JWS algorithms a `private_key_jwt` client may sign its assertion with. */
export type SigningAlg = 'RS256' | 'PS256' | 'ES256';

/** Exactly one of `tokenUrl` and `issuer` is set. */
export interface EnvironmentConfig {
  readonly name: string;
  /** The token endpoint, when configured directly. */
  readonly tokenUrl?: string;
  /** Discovery: the IdP's issuer; the token endpoint comes from its metadata document. */
  readonly issuer?: string;
  readonly timeoutMs: number;
  /** Absolute path of a PEM bundle of CAs trusted for this IdP (beside the system ones). */
  readonly caFile?: string;
  /** `http://` beyond loopback was explicitly allowed (never the default). */
  readonly allowInsecureHttp: boolean;
}

/**
 * Where a client's credential comes from: its secret (`secretFile`, `secretEnv`) or, for
 * private_key_jwt, its private key (`privateKeyFile`, `field` names it in messages) and, with
 * `certificatePath` (`certificateFile`), the key's certificate: the credential is then the
 * certificate PEM followed by the key (see signingCredentialOf).
 */
export type SecretSource =
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly field?: 'privateKeyFile';
      readonly certificatePath?: string;
    }
  | { readonly kind: 'env'; readonly name: string }
  /**
   * tls_client_auth / self_signed_tls_client_auth: `clientCertFile` + `clientKeyFile`; the
   * credential is the certificate PEM followed by the key PEM (see readClientSecret).
   */
  | { readonly kind: 'tls'; readonly certPath: string; readonly keyPath: string };

export interface ClientConfig {
  /** `environment/clientId`: the identity of a client everywhere in the service. */
  readonly key: string;
  readonly clientId: string;
  readonly environment: string;
  readonly secretSource: SecretSource;
  readonly scope?: string;
  readonly authMethod: AuthMethod;
  /** private_key_jwt: the assertion's `kid` header, when the IdP needs it to pick the key. */
  readonly keyId?: string;
  /** private_key_jwt: the assertion's algorithm (default RS256). */
  readonly signingAlg?: SigningAlg;
  /**
   * private_key_jwt with a `certificateFile`: the credential carries the key's certificate and
   * the assertion's header names it by its thumbprints (`x5t#S256`, `x5t`), as Entra ID wants.
   */
  readonly assertionCertificate?: true;
  /** Sent as `audience=` (Auth0, Okta custom authorization servers). */
  readonly audience?: string;
  /** Sent as one `resource=` each (RFC 8707; Entra ID v1, ADFS). */
  readonly resources?: readonly string[];
  /** Further form parameters of the token request, in configuration order. */
  readonly extraParams?: ReadonlyMap<string, string>;
}

/** One ACL entry of a caller: a client id in any environment, one environment's client, or all. */
export type AclEntry =
  | { readonly kind: 'any' }
  | { readonly kind: 'client'; readonly clientId: string }
  | {
      readonly kind: 'environment-client';
      readonly environment: string;
      readonly clientId: string;
    };

export interface CallerConfig {
  readonly name: string;
  /**
   * SHA-256 digests (32 bytes each) of the caller's keys, inline and from its `keySha256File`;
   * several while a key is rotated. Empty when the caller has no key (a JWT caller, or one whose
   * digest file is empty or deleted): no key then authenticates it.
   */
  readonly keyDigests: readonly Buffer[];
  /** The inline `keySha256` digests alone, so the digest file can be re-read on its own. */
  readonly inlineKeyDigests: readonly Buffer[];
  /**
   * Absolute path of the caller's `keySha256File`, if any: its digests are already in
   * `keyDigests`; the path is kept so a change of the file (a Secret update) is applied.
   */
  readonly keyDigestFile?: string;
  /** The workload identity (a JWT from a `callerIssuers` entry) this caller is, if any. */
  readonly workload?: WorkloadIdentity;
  readonly clients: readonly AclEntry[];
  readonly admin: boolean;
}

/**
 * Who a JWT caller is: a Kubernetes ServiceAccount (matched on the `kubernetes.io` claims) or
 * any other workload identity (matched on `sub`), both from a named `callerIssuers` entry.
 */
export type WorkloadIdentity =
  | {
      readonly kind: 'kubernetes';
      readonly issuer: string;
      readonly namespace: string;
      readonly serviceAccount: string;
    }
  | { readonly kind: 'jwt'; readonly issuer: string; readonly subject: string };

/** An issuer of workload JWTs that callers may present instead of a key. */
export interface CallerIssuerConfig {
  readonly name: string;
  /** The exact `iss` the tokens carry. */
  readonly issuer: string;
  /** Where its signing keys are; absent: found through `<issuer>/.well-known/openid-configuration`. */
  readonly jwksUri?: string;
  /** The `aud` the tokens must carry (the projected volume's `audience`). */
  readonly audience: string;
  /**
   * Absolute path of a token sent as `Authorization: Bearer` to fetch the JWKS and discovery
   * (the vendor's own projected ServiceAccount token, when the cluster does not let anonymous
   * readers fetch its JWKS); re-read on every fetch, since the kubelet rotates it.
   */
  readonly bearerTokenFile?: string;
}

export interface RefreshConfig {
  readonly ratio: number;
  readonly minTtlSeconds: number;
  /** A downstream rejection forces at most one refresh per client per this long, fleet-wide. */
  readonly minRejectionIntervalSeconds: number;
}

export interface ServiceConfig {
  readonly environments: ReadonlyMap<string, EnvironmentConfig>;
  readonly clients: readonly ClientConfig[];
  readonly callers: readonly CallerConfig[];
  readonly callerIssuers: readonly CallerIssuerConfig[];
  readonly refresh: RefreshConfig;
}

/** AUTH/ACL and TLS for Redis (standalone URLs may also carry user, password and rediss://). */
export interface RedisConnectionOptions {
  readonly username?: string;
  readonly password?: string;
  /** Credentials of the Sentinel processes themselves, when they require AUTH. */
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
  /**
   * TLS to Redis (and to Sentinels); `caFile`: the CAs to trust; `certFile` + `keyFile`: the
   * client certificate Redis asks for (`tls-auth-clients`).
   */
  readonly tls?: {
    readonly caFile?: string;
    readonly certFile?: string;
    readonly keyFile?: string;
  };
}

export type RedisSettings = (
  | { readonly mode: 'standalone'; readonly url: string }
  | {
      readonly mode: 'sentinel';
      readonly sentinels: readonly { host: string; port: number }[];
      readonly name: string;
    }
  | { readonly mode: 'cluster'; readonly nodes: readonly { host: string; port: number }[] }
) & { readonly connection?: RedisConnectionOptions };

export interface EncryptionKey {
  readonly kid: string;
  readonly key: Buffer;
}

/** What the process environment says (README "Environment"). */
export interface RuntimeSettings {
  readonly port: number;
  readonly host: string;
  readonly configPath: string;
  readonly redis?: RedisSettings;
  readonly keyPrefix: string;
  /** The first encrypts; all decrypt. Empty only when no Redis is configured. */
  readonly encryptionKeys: readonly EncryptionKey[];
  readonly logLevel: string;
  /** Port of the Prometheus `/metrics` listener (never the API port). */
  readonly metricsPort: number;
  /** CIDRs of proxies whose `X-Forwarded-For` names the client address; empty: none. */
  readonly trustedProxies: readonly string[];
  /** OTLP/HTTP traces endpoint (`.../v1/traces`); tracing is off when absent. */
  readonly otlpTracesEndpoint?: string;
}
