import { isIP } from 'node:net';
import { caFileProblem } from './ca-bundle';
import { readTlsPair } from './tls-pair-files';
import { ConfigError } from './config.error';
import type {
  EncryptionKey,
  RedisConnectionOptions,
  RedisSettings,
  RuntimeSettings,
} from './config.types';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
export const DEFAULT_KEY_PREFIX = 'token-vendor:';
/** The OpenTelemetry Prometheus exporter's registered port, which most stock setups expect. */
export const DEFAULT_METRICS_PORT = 9464;

/**
 * Reads the process environment (README "Environment"). Every problem is collected into one
 * ConfigError naming the variables; values of secret variables are never quoted.
 */
export function loadRuntimeSettings(
  env: NodeJS.ProcessEnv,
  defaults: { configPath?: string } = {},
): RuntimeSettings {
  const problems: string[] = [];

  const port = parsePort(env.PORT ?? '3000');
  if (port === undefined) problems.push('PORT: must be an integer from 0 to 65535');
  const host = env.HOST?.trim() || '0.0.0.0';
  const metricsPort = parsePort(env.METRICS_PORT ?? String(DEFAULT_METRICS_PORT));
  if (metricsPort === undefined) problems.push('METRICS_PORT: must be an integer from 0 to 65535');
  else if (metricsPort !== 0 && metricsPort === port)
    problems.push('METRICS_PORT: must differ from PORT (metrics are not served on the API port)');
  const trustedProxies = parseTrustedProxies(env.TRUSTED_PROXIES, problems);
  const otlpTracesEndpoint = parseOtlpEndpoint(env, problems);

  const configPath = env.TOKEN_VENDOR_CONFIG?.trim() || defaults.configPath;
  if (!configPath) problems.push('TOKEN_VENDOR_CONFIG: required (path of the YAML configuration)');

  const redis = parseRedisSettings(env, problems);

  const keyPrefix = env.REDIS_KEY_PREFIX ?? DEFAULT_KEY_PREFIX;
  if (!/^[\x21-\x7E]{0,64}$/.test(keyPrefix)) {
    problems.push('REDIS_KEY_PREFIX: at most 64 printable characters without spaces');
  }
  if (/[{}]/.test(keyPrefix))
    problems.push('REDIS_KEY_PREFIX: must not contain { or } (hash tags)');

  const encryptionKeys = parseEncryptionKeys(env.TOKEN_VENDOR_ENCRYPTION_KEYS, problems);
  const redisAsked = Boolean(
    env.REDIS_URL?.trim() || env.REDIS_SENTINELS?.trim() || env.REDIS_CLUSTER_NODES?.trim(),
  );
  if (
    redisAsked &&
    encryptionKeys.length === 0 &&
    !problems.some((p) => p.startsWith('TOKEN_VENDOR_ENCRYPTION_KEYS'))
  ) {
    problems.push(
      'TOKEN_VENDOR_ENCRYPTION_KEYS: required whenever Redis is used (kid:base64-32-bytes[,kid:key...])',
    );
  }

  const logLevel = (env.LOG_LEVEL ?? 'info').trim().toLowerCase();
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}`);

  if (problems.length > 0) throw new ConfigError('environment', problems);
  return {
    port: port ?? 3000,
    host,
    configPath: configPath ?? '',
    redis,
    keyPrefix,
    encryptionKeys,
    logLevel,
    metricsPort: metricsPort ?? DEFAULT_METRICS_PORT,
    trustedProxies,
    ...(otlpTracesEndpoint ? { otlpTracesEndpoint } : {}),
  };
}

/** `TRUSTED_PROXIES`: comma-separated CIDRs (or single addresses) of IPv4 or IPv6. */
function parseTrustedProxies(value: string | undefined, problems: string[]): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').flatMap((part, i) => {
    const entry = part.trim();
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address ?? '');
    const bits = family === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !prefixOk || extra !== undefined) {
      problems.push(`TRUSTED_PROXIES[${i}]: is not an IP address or CIDR (e.g. 10.0.0.0/8)`);
      return [];
    }
    return [entry];
  });
}

/**
 * The OpenTelemetry variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as given,
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL that `/v1/traces` is appended to (as the
 * OpenTelemetry SDKs read them). Neither set: tracing is off.
 */
function parseOtlpEndpoint(env: NodeJS.ProcessEnv, problems: string[]): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const name = traces ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const given = traces || base;
  if (!given) return undefined;
  if (!URL.canParse(given) || !/^https?:$/.test(new URL(given).protocol)) {
    // Not quoted: an endpoint URL may carry credentials.
    problems.push(`${name}: must be an http:// or https:// URL`);
    return undefined;
  }
  return traces ? given : `${given.replace(/\/+$/, '')}/v1/traces`;
}

function parsePort(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value.trim())) return undefined;
  const port = Number(value);
  return port <= 65535 ? port : undefined;
}

function parseRedisSettings(env: NodeJS.ProcessEnv, problems: string[]): RedisSettings | undefined {
  const url = env.REDIS_URL?.trim();
  const sentinels = env.REDIS_SENTINELS?.trim();
  const sentinelName = env.REDIS_SENTINEL_NAME?.trim();
  const clusterNodes = env.REDIS_CLUSTER_NODES?.trim();
  const modes = [url, sentinels, clusterNodes].filter(Boolean).length;
  if (modes > 1) {
    problems.push('REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set only one of them');
    return undefined;
  }
  if (url) {
    if (!URL.canParse(url) || !/^rediss?:$/.test(new URL(url).protocol)) {
      // The URL may carry a password: never echo it.
      problems.push('REDIS_URL: must be a redis:// or rediss:// URL');
      return undefined;
    }
    return { mode: 'standalone', url, connection: parseConnection(env, problems) };
  }
  if (sentinels) {
    const nodes = parseHostPorts(sentinels, 'REDIS_SENTINELS', problems);
    if (!sentinelName) problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS');
    return {
      mode: 'sentinel',
      sentinels: nodes,
      name: sentinelName ?? '',
      connection: parseConnection(env, problems),
    };
  }
  if (clusterNodes) {
    return {
      mode: 'cluster',
      nodes: parseHostPorts(clusterNodes, 'REDIS_CLUSTER_NODES', problems),
      connection: parseConnection(env, problems),
    };
  }
  return undefined;
}

function parseHostPorts(
  value: string,
  name: string,
  problems: string[],
): { host: string; port: number }[] {
  return value.split(',').flatMap((part, index) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(part);
    const port = match ? Number(match[2]) : NaN;
    if (!match || port < 1 || port > 65535) {
      // The entry itself is not quoted: a mistyped URL could carry a password.
      problems.push(`${name}[${index}]: is not host:port`);
      return [];
    }
    return [{ host: match[1].replace(/^\[|\]$/g, ''), port }];
  });
}

/** `kid:base64-32-bytes[,kid:key...]`; the first encrypts, all decrypt. */
export function parseEncryptionKeys(
  value: string | undefined,
  problems: string[],
): EncryptionKey[] {
  if (value === undefined || value.trim() === '') return [];
  const keys: EncryptionKey[] = [];
  value.split(',').forEach((part, i) => {
    const colon = part.indexOf(':');
    const kid = colon === -1 ? '' : part.slice(0, colon).trim();
    const material = colon === -1 ? '' : part.slice(colon + 1).trim();
    const where = `TOKEN_VENDOR_ENCRYPTION_KEYS[${i}]`;
    // No '.': it separates the parts of a stored value (v1.<kid>.<iv>...).
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(kid)) {
      return problems.push(`${where}: needs a key id of 1-32 letters, digits, _ or - before ":"`);
    }
    const key = /^[A-Za-z0-9+/]+={0,2}$/.test(material)
      ? Buffer.from(material, 'base64')
      : Buffer.alloc(0);
    if (key.length !== 32)
      return problems.push(`${where} (${kid}): the key must be 32 bytes in base64`);
    if (keys.some((k) => k.kid === kid))
      return problems.push(`${where}: key id ${kid} is listed twice`);
    keys.push({ kid, key });
  });
  return keys;
}

/** The variables that name Redis's client certificate pair, in messages. */
export const REDIS_TLS_PAIR_FIELDS = { cert: 'REDIS_TLS_CERT_FILE', key: 'REDIS_TLS_KEY_FILE' };

/**
 * REDIS_USERNAME / REDIS_PASSWORD, REDIS_SENTINEL_USERNAME / REDIS_SENTINEL_PASSWORD, REDIS_TLS,
 * REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE.
 */
function parseConnection(env: NodeJS.ProcessEnv, problems: string[]): RedisConnectionOptions {
  const tls = env.REDIS_TLS?.trim().toLowerCase();
  if (tls !== undefined && tls !== '' && tls !== 'true' && tls !== 'false') {
    problems.push('REDIS_TLS: must be true or false');
  }
  const caFile = env.REDIS_TLS_CA_FILE?.trim() || undefined;
  // Checked here, with the other variables, so the start stops with a message naming it.
  const caProblem = caFile && caFileProblem('REDIS_TLS_CA_FILE', caFile);
  if (caProblem) problems.push(caProblem);
  const certFile = env.REDIS_TLS_CERT_FILE?.trim() || undefined;
  const keyFile = env.REDIS_TLS_KEY_FILE?.trim() || undefined;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push(
      certFile === undefined
        ? 'REDIS_TLS_CERT_FILE: required with REDIS_TLS_KEY_FILE (the client certificate)'
        : 'REDIS_TLS_KEY_FILE: required with REDIS_TLS_CERT_FILE (the client certificate’s key)',
    );
  } else if (certFile !== undefined && keyFile !== undefined) {
    try {
      readTlsPair(certFile, keyFile, REDIS_TLS_PAIR_FIELDS);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  return {
    username: env.REDIS_USERNAME || undefined,
    password: env.REDIS_PASSWORD || undefined,
    sentinelUsername: env.REDIS_SENTINEL_USERNAME || undefined,
    sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
    tls:
      tls === 'true' || caFile || certFile
        ? {
            ...(caFile ? { caFile } : {}),
            ...(certFile && keyFile ? { certFile, keyFile } : {}),
          }
        : undefined,
  };
}
