import { readAtMost } from './bounded-read';
import { open, stat } from 'node:fs/promises';
import { ConfigError } from './config.error';
import type { ClientConfig, SecretSource } from './config.types';
import { parsePrivateKey } from './private-key';
import { tlsCredentialOf } from './tls-credential';

/** Largest secret we accept: guards against a wrong file (a binary, a log) being mounted. */
const MAX_SECRET_BYTES = 4096;
/** Largest private key file: an RSA-4096 JWK with every private member is about 3.5 KiB. */
export const MAX_KEY_FILE_BYTES = 16 * 1024;

/** The size limit of a client's credential file. */
export function maxCredentialBytes(source: Exclude<SecretSource, { kind: 'tls' }>): number {
  return source.kind === 'file' && source.field === 'privateKeyFile'
    ? MAX_KEY_FILE_BYTES
    : MAX_SECRET_BYTES;
}

/**
 * Reads every client's secret from its file or environment variable. Surrounding whitespace
 * (the trailing newline most editors and `kubectl create secret --from-file` leave) is trimmed.
 * Problems name the field and the file or variable, never the value.
 */
export function readClientSecrets(
  clients: readonly ClientConfig[],
  env: NodeJS.ProcessEnv,
  source: string,
): Map<string, string> {
  const secrets = new Map<string, string>();
  const problems: string[] = [];
  clients.forEach((client, i) => {
    const result = readClientSecret(client, env);
    if (typeof result === 'string') secrets.set(client.key, result);
    else problems.push(`clients[${i}].${result.field}: ${result.problem}`);
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return secrets;
}

export function readClientSecret(
  client: ClientConfig,
  env: NodeJS.ProcessEnv,
): string | { field: string; problem: string } {
  const src = client.secretSource;
  if (src.kind === 'tls') return readTlsCredential(src.certPath, src.keyPath);
  let value: string | undefined;
  if (src.kind === 'file') {
    const field = src.field ?? 'secretFile';
    const maxBytes = maxCredentialBytes(src);
    try {
      const bytes = readAtMost(src.path, maxBytes + 1);
      if (bytes.length > maxBytes) {
        return { field, problem: `${src.path} is larger than ${maxBytes} bytes` };
      }
      value = bytes.toString('utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return { field, problem: `cannot read ${src.path} (${code})` };
    }
  } else {
    value = env[src.name];
    if (value === undefined) {
      return { field: 'secretEnv', problem: `environment variable ${src.name} is not set` };
    }
  }
  const secret = value.trim();
  if (secret.length === 0) {
    const field = src.kind === 'file' ? (src.field ?? 'secretFile') : 'secretEnv';
    return {
      field,
      problem: `the secret in ${src.kind === 'file' ? src.path : src.name} is empty`,
    };
  }
  if (src.kind === 'file' && src.field === 'privateKeyFile') {
    try {
      parsePrivateKey(secret, client.signingAlg ?? 'RS256');
    } catch (e) {
      return { field: 'privateKeyFile', problem: `${src.path} ${(e as Error).message}` };
    }
  }
  return secret;
}

/** Largest certificate or key file of a TLS client credential (a chain of a few certificates). */
const MAX_TLS_FILE_BYTES = 64 * 1024;

function readTlsCredential(
  certPath: string,
  keyPath: string,
): string | { field: string; problem: string } {
  const texts: string[] = [];
  for (const [field, path] of [
    ['clientCertFile', certPath],
    ['clientKeyFile', keyPath],
  ] as const) {
    try {
      const bytes = readAtMost(path, MAX_TLS_FILE_BYTES + 1);
      if (bytes.length > MAX_TLS_FILE_BYTES) {
        return { field, problem: `${path} is larger than ${MAX_TLS_FILE_BYTES} bytes` };
      }
      texts.push(bytes.toString('utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return { field, problem: `cannot read ${path} (${code})` };
    }
  }
  try {
    return tlsCredentialOf(texts[0], texts[1]);
  } catch (e) {
    const [field, problem] = (e as Error).message.split(': ') as [string, string];
    return { field, problem: `${field === 'clientCertFile' ? certPath : keyPath} ${problem}` };
  }
}

/**
 * The running check of a TLS credential: re-read when either file changed; a credential is
 * offered only when the two files make a pair (a rotation half done is not one).
 */
export async function readChangedTlsCredential(
  certPath: string,
  keyPath: string,
  previous: string | undefined,
): Promise<{ identity: string; secret?: string } | undefined> {
  const identities: string[] = [];
  for (const path of [certPath, keyPath]) {
    try {
      const s = await stat(path);
      identities.push(`${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`);
    } catch {
      return undefined;
    }
  }
  const identity = identities.join('|');
  if (identity === previous) return { identity };
  const read = readTlsCredential(certPath, keyPath);
  return typeof read === 'string' ? { identity, secret: read } : { identity };
}

/**
 * The asynchronous check used while running: the file is read only when its identity changed
 * (inode, size or modification time; the Kubernetes `..data` swap gives the new file a new
 * inode), so thousands of clients cost thousands of `stat`s, not reads, and never block the
 * event loop. `previous` is the identity seen last time; the result carries the new one.
 */
export async function readChangedFileSecret(
  path: string,
  previous: string | undefined,
  maxBytes = MAX_SECRET_BYTES,
): Promise<{ identity: string; secret?: string } | undefined> {
  let identity: string;
  try {
    const s = await stat(path);
    identity = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined; // missing for a moment (a swap in progress): keep what works
  }
  if (identity === previous) return { identity };
  let handle;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) return { identity };
    const secret = buffer.subarray(0, length).toString('utf8').trim();
    return secret.length > 0 ? { identity, secret } : { identity };
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}
