import { readFileSync } from 'node:fs';
import { caFileProblem } from './ca-bundle';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readCallerKeyFiles } from './caller-key-files.reader';
import { ConfigError, fieldPath } from './config.error';
import type {
  AclEntry,
  CallerConfig,
  CallerIssuerConfig,
  ClientConfig,
  ServiceConfig,
  WorkloadIdentity,
} from './config.types';
import {
  AUTH_METHODS,
  CLIENT_ID,
  ENVIRONMENT_NAME,
  isKeySourceUrl,
  SECRET_AUTH_METHODS,
  TLS_AUTH_METHODS,
  serviceConfigSchema,
  type RawServiceConfig,
} from './service-config.schema';

const INLINE_SECRET_KEYS = ['secret', 'clientSecret', 'client_secret', 'password'];

/**
 * Reads and validates the YAML configuration file, then the callers' `keySha256File`s (see
 * readCallerKeyFiles); throws a ConfigError listing every problem.
 */
export function loadServiceConfigFile(path: string): ServiceConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [
      `cannot read the configuration file: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    ]);
  }
  const service = parseServiceConfig(text, path, dirname(resolve(path)));
  const caProblems = findCaFileProblems(service);
  if (caProblems.length > 0) throw new ConfigError(path, caProblems);
  return readCallerKeyFiles(service, path);
}

/** Each environment's caFile must hold at least one PEM certificate. */
function findCaFileProblems(service: ServiceConfig): string[] {
  const problems: string[] = [];
  for (const environment of service.environments.values()) {
    if (environment.caFile === undefined) continue;
    const problem = caFileProblem(`environments.${environment.name}.caFile`, environment.caFile);
    if (problem) problems.push(problem);
  }
  return problems;
}

/**
 * Validates configuration text; reads no file. Relative `secretFile` and `keySha256File` paths
 * are resolved against `baseDir` (the configuration file's folder), so a config and its secrets
 * can move together. A caller's `keyDigests` hold its inline `keySha256` only: the digests of
 * its `keySha256File` (`keyDigestFile`) are added by readCallerKeyFiles.
 */
export function parseServiceConfig(
  text: string,
  source: string,
  baseDir = process.cwd(),
): ServiceConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    // The YAML parser's message quotes the offending line, which could hold a secret.
    const line = (e as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new ConfigError(source, [`not valid YAML${line ? ` (line ${line})` : ''}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, ['the file must hold a YAML mapping']);
  }

  const problems = [...findInlineSecrets(raw), ...findSecretSourceProblems(raw)];
  const parsed = serviceConfigSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = fieldPath(issue.path);
      // Inline secrets are already reported with a clearer message.
      if (issue.code === 'unrecognized_keys') {
        const keys = issue.keys.filter((k) => !INLINE_SECRET_KEYS.includes(k));
        if (keys.length > 0)
          problems.push(`${path || '(top level)'}: unknown field(s) ${keys.join(', ')}`);
        continue;
      }
      problems.push(`${path || '(top level)'}: ${issue.message}`);
    }
    // Cross-references are checked too, so one message lists every problem.
    problems.push(...findReferenceProblems(raw));
    throw new ConfigError(source, problems);
  }
  if (problems.length > 0) throw new ConfigError(source, problems);

  const data = parsed.data;
  const environments = new Map(
    Object.entries(data.environments).map(([name, e]) => [
      name,
      {
        name,
        ...(e.tokenUrl !== undefined ? { tokenUrl: e.tokenUrl } : {}),
        ...(e.issuer !== undefined ? { issuer: e.issuer } : {}),
        timeoutMs: e.timeoutMs,
        ...(e.caFile !== undefined ? { caFile: resolve(baseDir, e.caFile) } : {}),
        allowInsecureHttp: e.allowInsecureHttp,
      },
    ]),
  );

  const clients: ClientConfig[] = [];
  const seen = new Set<string>();
  data.clients.forEach((c, i) => {
    if (!environments.has(c.environment)) {
      problems.push(`clients[${i}].environment: "${c.environment}" is not under environments`);
    }
    const key = `${c.environment}/${c.clientId}`;
    if (seen.has(key)) problems.push(`clients[${i}].clientId: ${key} is listed twice`);
    seen.add(key);
    clients.push({
      key,
      clientId: c.clientId,
      environment: c.environment,
      secretSource: secretSourceOf(c, baseDir),
      scope: c.scope,
      authMethod: c.authMethod,
      ...(c.authMethod === 'private_key_jwt'
        ? {
            signingAlg: c.signingAlg ?? 'RS256',
            ...(c.keyId ? { keyId: c.keyId } : {}),
            ...(c.certificateFile !== undefined ? { assertionCertificate: true as const } : {}),
          }
        : {}),
      ...(c.audience !== undefined ? { audience: c.audience } : {}),
      ...(c.resource !== undefined ? { resources: c.resource } : {}),
      ...(c.extraParams !== undefined
        ? { extraParams: new Map(Object.entries(c.extraParams)) }
        : {}),
    });
  });

  const callerIssuers: CallerIssuerConfig[] = data.callerIssuers.map((entry, i) => {
    if (data.callerIssuers.findIndex((other) => other.name === entry.name) !== i) {
      problems.push(`callerIssuers[${i}].name: "${entry.name}" is listed twice`);
    }
    if (data.callerIssuers.findIndex((other) => other.issuer === entry.issuer) !== i) {
      problems.push(`callerIssuers[${i}].issuer: "${entry.issuer}" is listed twice`);
    }
    if (entry.jwksUri === undefined && !isKeySourceUrl(entry.issuer)) {
      problems.push(
        `callerIssuers[${i}].jwksUri: required when the issuer is not an https URL to discover it from`,
      );
    }
    return {
      name: entry.name,
      issuer: entry.issuer,
      ...(entry.jwksUri !== undefined ? { jwksUri: entry.jwksUri } : {}),
      audience: entry.audience,
      ...(entry.bearerTokenFile !== undefined
        ? { bearerTokenFile: resolve(baseDir, entry.bearerTokenFile) }
        : {}),
    };
  });
  const workloadOwners = new Map<string, string>();

  const digestOwners = new Map<string, string>();
  const callers: CallerConfig[] = data.callers.map((caller, i) => {
    if (data.callers.findIndex((other) => other.name === caller.name) !== i) {
      problems.push(`callers[${i}].name: "${caller.name}" is listed twice`);
    }
    const inline = caller.keySha256 ?? [];
    inline.forEach((hex, k) => {
      const digest = hex.toLowerCase();
      const owner = digestOwners.get(digest);
      if (owner !== undefined) {
        problems.push(`callers[${i}].keySha256[${k}]: the same key is already given to ${owner}`);
      }
      digestOwners.set(digest, caller.name);
    });
    const acl = caller.clients.map((entry, k) =>
      parseAclEntry(entry, `callers[${i}].clients[${k}]`, clients, problems),
    );
    const workload = workloadOf(caller);
    if (workload !== undefined) {
      const field = `callers[${i}].${workload.kind === 'kubernetes' ? 'kubernetes' : 'jwt'}`;
      if (!callerIssuers.some((entry) => entry.name === workload.issuer)) {
        problems.push(`${field}.issuer: "${workload.issuer}" is not under callerIssuers`);
      }
      // One identity, one caller: otherwise which ACL applies would depend on list order.
      const identity = JSON.stringify(workload);
      const owner = workloadOwners.get(identity);
      if (owner !== undefined) problems.push(`${field}: the same workload is already ${owner}`);
      else workloadOwners.set(identity, caller.name);
    }
    const inlineKeyDigests = inline.map((hex) => Buffer.from(hex, 'hex'));
    return {
      name: caller.name,
      keyDigests: inlineKeyDigests,
      inlineKeyDigests,
      ...(caller.keySha256File !== undefined
        ? { keyDigestFile: resolve(baseDir, caller.keySha256File) }
        : {}),
      ...(workload !== undefined ? { workload } : {}),
      clients: acl.filter((e): e is AclEntry => e !== undefined),
      admin: caller.admin,
    };
  });

  if (problems.length > 0) throw new ConfigError(source, problems);
  return { environments, clients, callers, callerIssuers, refresh: data.refresh };
}

function workloadOf(caller: RawServiceConfig['callers'][number]): WorkloadIdentity | undefined {
  if (caller.kubernetes !== undefined) return { kind: 'kubernetes', ...caller.kubernetes };
  if (caller.jwt !== undefined) return { kind: 'jwt', ...caller.jwt };
  return undefined;
}

function parseAclEntry(
  entry: string,
  field: string,
  clients: readonly ClientConfig[],
  problems: string[],
): AclEntry | undefined {
  if (entry === '*') return { kind: 'any' };
  const slash = entry.indexOf('/');
  if (slash === -1) {
    if (!CLIENT_ID.test(entry))
      return void problems.push(`${field}: "${entry}" is not a client id`);
    if (!clients.some((c) => c.clientId === entry)) {
      problems.push(`${field}: "${entry}" matches no configured client`);
    }
    return { kind: 'client', clientId: entry };
  }
  const environment = entry.slice(0, slash);
  const clientId = entry.slice(slash + 1);
  if (!ENVIRONMENT_NAME.test(environment) || !CLIENT_ID.test(clientId)) {
    return void problems.push(`${field}: "${entry}" is not "environment/clientId"`);
  }
  if (!clients.some((c) => c.key === entry)) {
    problems.push(`${field}: "${entry}" matches no configured client`);
  }
  return { kind: 'environment-client', environment, clientId };
}

/** Secrets are never written inline: name each place one was, never its value. */
function findInlineSecrets(raw: object): string[] {
  const clients = (raw as { clients?: unknown }).clients;
  if (!Array.isArray(clients)) return [];
  const problems: string[] = [];
  clients.forEach((c: unknown, i) => {
    if (c === null || typeof c !== 'object') return;
    for (const key of INLINE_SECRET_KEYS) {
      if (key in c) {
        problems.push(
          `clients[${i}].${key}: secrets are never written inline; use secretFile or secretEnv`,
        );
      }
    }
  });
  return problems;
}

function secretSourceOf(
  c: RawServiceConfig['clients'][number],
  baseDir: string,
): ClientConfig['secretSource'] {
  if (c.clientCertFile !== undefined && c.clientKeyFile !== undefined) {
    return {
      kind: 'tls',
      certPath: resolve(baseDir, c.clientCertFile),
      keyPath: resolve(baseDir, c.clientKeyFile),
    };
  }
  if (c.privateKeyFile !== undefined) {
    return {
      kind: 'file',
      path: resolve(baseDir, c.privateKeyFile),
      field: 'privateKeyFile',
      ...(c.certificateFile !== undefined
        ? { certificatePath: resolve(baseDir, c.certificateFile) }
        : {}),
    };
  }
  return c.secretFile !== undefined
    ? { kind: 'file', path: resolve(baseDir, c.secretFile) }
    : { kind: 'env', name: c.secretEnv ?? '' };
}

/** Fields that only the named authentication method uses. */
const METHOD_ONLY_FIELDS: Record<string, readonly string[]> = {
  privateKeyFile: ['private_key_jwt'],
  certificateFile: ['private_key_jwt'],
  keyId: ['private_key_jwt'],
  signingAlg: ['private_key_jwt'],
  clientCertFile: TLS_AUTH_METHODS,
  clientKeyFile: TLS_AUTH_METHODS,
};

/**
 * Exactly one credential per client, the one its authMethod uses (checked on the raw file,
 * beside the schema): a secret source for the client_secret_* methods, a private key for
 * private_key_jwt.
 */
function findSecretSourceProblems(raw: object): string[] {
  const clients = (raw as { clients?: unknown }).clients;
  if (!Array.isArray(clients)) return [];
  const problems: string[] = [];
  clients.forEach((c: unknown, i) => {
    if (c === null || typeof c !== 'object') return;
    const method = (c as { authMethod?: unknown }).authMethod ?? 'client_secret_post';
    const known = typeof method === 'string' && AUTH_METHODS.includes(method as never);
    for (const [field, owners] of Object.entries(METHOD_ONLY_FIELDS)) {
      if (field in c && known && !owners.includes(method)) {
        problems.push(`clients[${i}].${field}: only used with authMethod ${owners.join(' or ')}`);
      }
    }
    // An unknown method is reported by the schema; its secret source is still checked.
    if (!known || SECRET_AUTH_METHODS.includes(method)) {
      if ('secretFile' in c === 'secretEnv' in c) {
        problems.push(
          `clients[${i}].secretFile: exactly one of secretFile or secretEnv is required`,
        );
      }
      return;
    }
    for (const field of ['secretFile', 'secretEnv']) {
      if (field in c) problems.push(`clients[${i}].${field}: not used with authMethod ${method}`);
    }
    if (method === 'private_key_jwt' && !('privateKeyFile' in c)) {
      problems.push(`clients[${i}].privateKeyFile: required with authMethod private_key_jwt`);
    }
    if (TLS_AUTH_METHODS.includes(method)) {
      for (const field of ['clientCertFile', 'clientKeyFile']) {
        if (!(field in c))
          problems.push(`clients[${i}].${field}: required with authMethod ${method}`);
      }
    }
  });
  return problems;
}

/**
 * The cross-reference checks, on a file the schema refused: environment references and
 * duplicate clients, wherever the raw values are readable.
 */
function findReferenceProblems(raw: object): string[] {
  const { environments, clients } = raw as { environments?: unknown; clients?: unknown };
  if (!Array.isArray(clients)) return [];
  const known = environments && typeof environments === 'object' ? Object.keys(environments) : [];
  const problems: string[] = [];
  const seen = new Set<string>();
  clients.forEach((c: unknown, i) => {
    const { clientId, environment } = (c ?? {}) as { clientId?: unknown; environment?: unknown };
    if (typeof environment !== 'string' || !ENVIRONMENT_NAME.test(environment)) return;
    if (!known.includes(environment)) {
      problems.push(`clients[${i}].environment: "${environment}" is not under environments`);
    }
    if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) return;
    const key = `${environment}/${clientId}`;
    if (seen.has(key)) problems.push(`clients[${i}].clientId: ${key} is listed twice`);
    seen.add(key);
  });
  return problems;
}
