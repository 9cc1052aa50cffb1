import { z } from 'zod';

/** Names appear in URLs, Redis keys and metric labels: keep them to a safe alphabet. */
export const ENVIRONMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** RFC 6749 allows any VSCHAR; we exclude `/` (ACL separator) and characters unsafe in a path. */
export const CLIENT_ID = /^[A-Za-z0-9._~:@+-]{1,200}$/;
export const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_REFRESH_RATIO = 0.75;
export const DEFAULT_MIN_TTL_SECONDS = 30;
/** At most one forced refresh per client per this many seconds, for the whole fleet. */
export const DEFAULT_MIN_REJECTION_INTERVAL_SECONDS = 30;

export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256'] as const;
export const AUTH_METHODS = [
  'client_secret_post',
  'client_secret_basic',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
] as const;
/** The methods (RFC 8705) whose credential is a client certificate and its key. */
export const TLS_AUTH_METHODS: readonly string[] = [
  'tls_client_auth',
  'self_signed_tls_client_auth',
];
/** The methods whose credential is a shared secret (`secretFile` / `secretEnv`). */
export const SECRET_AUTH_METHODS: readonly string[] = ['client_secret_post', 'client_secret_basic'];

/**
 * Form parameters the service itself sets (grant, client authentication, scope) or that have
 * their own field (audience, resource): `extraParams` may not override them.
 */
export const RESERVED_TOKEN_PARAMS = [
  'grant_type',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'scope',
  'audience',
  'resource',
];
/** Names that would put a credential in the configuration file, which holds none. */
const SECRET_LIKE_PARAM = /secret|passw|assertion|token|credential|api[_-]?key|private/i;
/** RFC 6749 Appendix A.1: a parameter name is one or more VSCHAR. */
const PARAM_NAME = /^[\x20-\x7E]{1,100}$/;

/**
 * Hosts a plain `http://` URL may name without `allowInsecureHttp`: traffic never leaves the
 * machine (README "Egress and trust"). `localhost.` is not one: glibc looks the dotted name up
 * in DNS, not in /etc/hosts.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host.includes(':')) return isLoopbackIpv6(host);
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}

/**
 * `::1`, or 127.0.0.0/8 mapped into IPv6 (`::ffff:127.x.y.z`), in any notation: the WHATWG URL
 * parser writes both compressed and in hex (`[::ffff:127.0.0.1]` becomes `[::ffff:7f00:1]`).
 * Other embeddings of 127.x are not loopback: IPv4-compatible `::127.0.0.1` is deprecated and
 * unrouted, NAT64's `64:ff9b::127.0.0.1` leaves through the translator.
 */
function isLoopbackIpv6(address: string): boolean {
  const literal = `http://[${address}]/`;
  if (!/^[0-9a-f:.]+$/.test(address) || !URL.canParse(literal)) return false;
  const canonical = new URL(literal).hostname;
  return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
}

const httpUrl = z
  .string()
  .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
    message: 'must be an http(s) URL',
  })
  // Credentials belong in secret files, never in a URL of the configuration.
  .refine((v) => !URL.canParse(v) || (!new URL(v).username && !new URL(v).password), {
    message: 'must not hold credentials',
  });

const environmentSchema = z
  .strictObject({
    tokenUrl: httpUrl.optional(),
    /** Discovery: the token endpoint comes from the issuer's metadata document. */
    issuer: httpUrl
      .refine((v) => !URL.canParse(v) || (!new URL(v).search && !new URL(v).hash), {
        message: 'must have no query or fragment (OpenID Connect Discovery §3)',
      })
      .optional(),
    timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_TIMEOUT_MS),
    caFile: z.string().min(1).optional(),
    allowInsecureHttp: z.boolean().default(false),
  })
  .superRefine((e, ctx) => {
    if ((e.tokenUrl === undefined) === (e.issuer === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tokenUrl'],
        message: 'exactly one of tokenUrl or issuer is required',
      });
    }
    // A secret must never cross the network in clear by accident (README "Egress and trust").
    for (const field of ['tokenUrl', 'issuer'] as const) {
      const value = e[field];
      if (value === undefined || !insecureHttp(value, e.allowInsecureHttp)) continue;
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message:
          'http:// is accepted only for loopback hosts; use https:// or set allowInsecureHttp: true',
      });
    }
  });

/** Whether a URL would send credentials in clear beyond this machine without being allowed to. */
export function insecureHttp(value: string, allowInsecureHttp: boolean): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  return url.protocol === 'http:' && !isLoopbackHost(url.hostname) && !allowInsecureHttp;
}

const resourceUri = z.string().refine((v) => URL.canParse(v) && !v.includes('#'), {
  message: 'must be an absolute URI without a fragment (RFC 8707)',
});

const clientSchema = z.strictObject({
  clientId: z.string().regex(CLIENT_ID, 'must match ' + String(CLIENT_ID)),
  environment: z.string().regex(ENVIRONMENT_NAME, 'must match ' + String(ENVIRONMENT_NAME)),
  secretFile: z.string().min(1).optional(),
  secretEnv: z.string().regex(ENV_VAR_NAME, 'must be an environment variable name').optional(),
  scope: z
    .string()
    .regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, {
      message: 'must be space-separated scope tokens (RFC 6749 §3.3)',
    })
    .optional(),
  authMethod: z.enum(AUTH_METHODS).default('client_secret_post'),
  privateKeyFile: z.string().min(1).optional(),
  certificateFile: z.string().min(1).optional(),
  clientCertFile: z.string().min(1).optional(),
  clientKeyFile: z.string().min(1).optional(),
  keyId: z.string().min(1).max(200).optional(),
  signingAlg: z.enum(SIGNING_ALGS).optional(),
  audience: z.string().min(1).max(2000).optional(),
  resource: z
    .union([resourceUri, z.array(resourceUri).min(1)])
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .optional(),
  extraParams: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String))
    // Checked here rather than on the record's key, so each message says why a name is refused.
    .superRefine((params, ctx) => {
      for (const name of Object.keys(params)) {
        const message = !PARAM_NAME.test(name)
          ? 'must be a parameter name (printable ASCII)'
          : RESERVED_TOKEN_PARAMS.includes(name)
            ? 'is set by the service (or has its own field) and cannot be overridden'
            : SECRET_LIKE_PARAM.test(name)
              ? 'would carry a credential; credentials are never written in the configuration'
              : undefined;
        if (message) ctx.addIssue({ code: 'custom', path: [name], message });
      }
    })
    .optional(),
});

/** An issuer's `name`, as callers refer to it. */
const ISSUER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** A Kubernetes namespace or ServiceAccount name (RFC 1123 label / subdomain). */
const KUBERNETES_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * Whether a JWKS or issuer URL may be fetched: https, or http for a loopback host only (a JWKS
 * fetched over plain HTTP from elsewhere could be swapped in transit, and with it every
 * caller's identity).
 */
export function isKeySourceUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  // The same loopback rule as the environments' http:// check (isLoopbackHost).
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

const keySourceUrl = z
  .string()
  .refine(isKeySourceUrl, { message: 'must be an https URL (http only for a loopback host)' })
  .refine((v) => !URL.canParse(v) || (!new URL(v).username && !new URL(v).password), {
    message: 'must not hold credentials',
  });

const callerIssuerSchema = z.strictObject({
  name: z.string().regex(ISSUER_NAME, 'must be a simple name'),
  issuer: z
    .string()
    .min(1)
    .max(2048)
    // An issuer need not be a URL, but one that is must not carry a password (it is logged).
    .refine((v) => !URL.canParse(v) || (!new URL(v).username && !new URL(v).password), {
      message: 'must not hold credentials',
    }),
  jwksUri: keySourceUrl.optional(),
  audience: z.string().min(1).max(256),
  /** Read at each JWKS fetch, not by the loader (the kubelet rotates it). */
  bearerTokenFile: z.string().min(1).optional(),
});

const callerSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a simple name'),
    keySha256: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .pipe(
        z
          .array(z.string().regex(SHA256_HEX, 'must be 64 hex characters (a SHA-256 digest)'))
          .min(1, 'at least one key digest is required'),
      )
      .optional(),
    /** A file of digests, one per line (a mounted Secret); read by the loader, not here. */
    keySha256File: z.string().min(1).optional(),
    /** A Kubernetes ServiceAccount presenting its projected token. */
    kubernetes: z
      .strictObject({
        issuer: z.string().regex(ISSUER_NAME, 'must name a callerIssuers entry'),
        namespace: z.string().regex(KUBERNETES_NAME, 'must be a Kubernetes namespace name'),
        serviceAccount: z
          .string()
          .regex(KUBERNETES_NAME, 'must be a Kubernetes ServiceAccount name'),
      })
      .optional(),
    /** Any other workload identity: a JWT of that issuer with this exact `sub`. */
    jwt: z
      .strictObject({
        issuer: z.string().regex(ISSUER_NAME, 'must name a callerIssuers entry'),
        subject: z.string().min(1).max(1024),
      })
      .optional(),
    clients: z.array(z.string().min(1)).default([]),
    admin: z.boolean().default(false),
  })
  .refine(
    (c) =>
      c.keySha256 !== undefined ||
      c.keySha256File !== undefined ||
      c.kubernetes !== undefined ||
      c.jwt !== undefined,
    {
      path: ['keySha256'],
      message: 'a caller needs a way to authenticate (keySha256, keySha256File, kubernetes or jwt)',
    },
  )
  .refine((c) => c.kubernetes === undefined || c.jwt === undefined, {
    path: ['jwt'],
    message: 'a caller is one workload: give kubernetes or jwt, not both',
  });

export const serviceConfigSchema = z.strictObject({
  environments: z
    .record(z.string().regex(ENVIRONMENT_NAME, 'bad environment name'), environmentSchema)
    .refine((r) => Object.keys(r).length > 0, { message: 'at least one environment is required' }),
  clients: z.array(clientSchema).default([]),
  callers: z.array(callerSchema).default([]),
  callerIssuers: z.array(callerIssuerSchema).default([]),
  refresh: z
    .strictObject({
      ratio: z.number().gt(0).lt(1).default(DEFAULT_REFRESH_RATIO),
      minTtlSeconds: z.number().int().min(0).max(3600).default(DEFAULT_MIN_TTL_SECONDS),
      minRejectionIntervalSeconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(DEFAULT_MIN_REJECTION_INTERVAL_SECONDS),
    })
    .default({
      ratio: DEFAULT_REFRESH_RATIO,
      minTtlSeconds: DEFAULT_MIN_TTL_SECONDS,
      minRejectionIntervalSeconds: DEFAULT_MIN_REJECTION_INTERVAL_SECONDS,
    }),
});

export type RawServiceConfig = z.infer<typeof serviceConfigSchema>;
