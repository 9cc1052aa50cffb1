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

const environmentSchema = z.strictObject({
  tokenUrl: z
    .string()
    .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol), {
      message: 'must be an http(s) URL',
    })
    // Credentials belong in secret files, never in a URL of the configuration.
    .refine((v) => !URL.canParse(v) || (!new URL(v).username && !new URL(v).password), {
      message: 'must not hold credentials',
    }),
  timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_TIMEOUT_MS),
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
  authMethod: z.enum(['client_secret_post', 'client_secret_basic']).default('client_secret_post'),
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
    clients: z.array(z.string().min(1)).default([]),
    admin: z.boolean().default(false),
  })
  .refine((c) => c.keySha256 !== undefined || c.keySha256File !== undefined, {
    path: ['keySha256'],
    message: 'at least one key digest is required (keySha256 or keySha256File)',
  });

export const serviceConfigSchema = z.strictObject({
  environments: z
    .record(z.string().regex(ENVIRONMENT_NAME, 'bad environment name'), environmentSchema)
    .refine((r) => Object.keys(r).length > 0, { message: 'at least one environment is required' }),
  clients: z.array(clientSchema).default([]),
  callers: z.array(callerSchema).default([]),
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
