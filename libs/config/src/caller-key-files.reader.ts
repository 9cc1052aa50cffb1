import { readAtMost } from './bounded-read';
import { ConfigError } from './config.error';
import type { CallerConfig, ServiceConfig } from './config.types';
import { SHA256_HEX } from './service-config.schema';

/** Largest digest file we accept: thousands of digests, yet a wrong mount cannot exhaust memory. */
export const MAX_KEY_DIGEST_FILE_BYTES = 64 * 1024;
/** Bad lines named one by one; past this a count stands for the rest. */
const MAX_LINE_PROBLEMS = 5;

export interface KeyDigestFile {
  /** The file does not exist: no keys from it (a caller's keys revoked by deleting it). */
  readonly missing?: boolean;
  /** Lowercase hex digests with the (1-based) line each came from. */
  readonly digests: readonly { readonly line: number; readonly hex: string }[];
  /** Problems without the field name; they name lines, never their content. */
  readonly problems: readonly string[];
}

/**
 * Reads a `keySha256File`: SHA-256 hex digests, one per line; blank lines and `#` comments
 * are ignored. A bad line is reported by its number only: the file might hold a key itself.
 * An empty or missing file holds no digest, which is not a problem: emptying or deleting it is
 * how an operator revokes the caller's keys (README "Callers"). A file that exists but cannot be
 * read (permissions, a folder) is a problem: it says nothing about the operator's intent.
 */
export function readKeyDigestFile(path: string): KeyDigestFile {
  let bytes: Buffer;
  try {
    bytes = readAtMost(path, MAX_KEY_DIGEST_FILE_BYTES + 1);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return { missing: true, digests: [], problems: [] };
    return { digests: [], problems: [`cannot read ${path} (${code})`] };
  }
  if (bytes.length > MAX_KEY_DIGEST_FILE_BYTES) {
    return {
      digests: [],
      problems: [`${path} is larger than ${MAX_KEY_DIGEST_FILE_BYTES} bytes`],
    };
  }
  const digests: { line: number; hex: string }[] = [];
  const badLines: number[] = [];
  bytes
    .toString('utf8')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const text = raw.replace(/#.*$/, '').trim();
      if (text === '') return;
      if (SHA256_HEX.test(text)) digests.push({ line: i + 1, hex: text.toLowerCase() });
      else badLines.push(i + 1);
    });
  const problems = badLines
    .slice(0, MAX_LINE_PROBLEMS)
    .map((line) => `line ${line} is not a SHA-256 digest`);
  if (badLines.length > MAX_LINE_PROBLEMS) {
    problems.push(`${badLines.length - MAX_LINE_PROBLEMS} more lines are not SHA-256 digests`);
  }
  return { digests, problems };
}

/**
 * The step after parseServiceConfig (which reads no file): sets every caller's `keyDigests` to
 * its inline digests plus those of its `keySha256File`. Run at start, on every reload, and on
 * its own when a digest file changed (so a revocation applies even while another part of the
 * configuration is invalid). The checks of inline digests apply here too: a key belongs to one
 * caller only. A caller left with no digest is no error: no key authenticates it (401).
 * Throws one ConfigError naming each problem by field and line, never by content.
 */
export function readCallerKeyFiles(service: ServiceConfig, source: string): ServiceConfig {
  if (!service.callers.some((c) => c.keyDigestFile !== undefined)) return service;
  const problems: string[] = [];
  const owners = new Map<string, string>();
  for (const caller of service.callers) {
    for (const digest of caller.inlineKeyDigests) {
      const hex = digest.toString('hex');
      if (!owners.has(hex)) owners.set(hex, caller.name);
    }
  }
  const callers = service.callers.map((caller, i): CallerConfig => {
    if (caller.keyDigestFile === undefined) return caller;
    const field = `callers[${i}].keySha256File`;
    const file = readKeyDigestFile(caller.keyDigestFile);
    problems.push(...file.problems.map((p) => `${field}: ${p}`));
    for (const { line, hex } of file.digests) {
      const owner = owners.get(hex);
      if (owner !== undefined) {
        problems.push(`${field}: line ${line}: the same key is already given to ${owner}`);
      } else {
        owners.set(hex, caller.name);
      }
    }
    const keyDigests = [
      ...caller.inlineKeyDigests,
      ...file.digests.map(({ hex }) => Buffer.from(hex, 'hex')),
    ];
    return { ...caller, keyDigests };
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { ...service, callers };
}

/** Callers nothing can authenticate (no digest, no workload identity): every request is a 401. */
export function callersWithoutCredentials(service: ServiceConfig): string[] {
  return service.callers
    .filter((c) => c.keyDigests.length === 0 && c.workload === undefined)
    .map((c) => c.name);
}
