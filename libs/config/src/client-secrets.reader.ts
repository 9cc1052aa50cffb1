import { readAtMost } from './bounded-read';
import { open, stat } from 'node:fs/promises';
import { ConfigError } from './config.error';
import { fileIdentity } from './file-identity';
import type { ClientConfig, SecretSource, SigningAlg } from './config.types';
import { parsePrivateKey } from './private-key';
import { signingCredentialOf } from './signing-credential';
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
  if (src.kind === 'file' && src.certificatePath !== undefined) {
    return readSigningCredential(src.certificatePath, src.path, client.signingAlg ?? 'RS256');
  }
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
/** Largest `certificateFile`: one certificate (a few KiB even with many names). */
const MAX_CERTIFICATE_FILE_BYTES = 16 * 1024;

type ReadResult = string | { field: string; problem: string };

/** The texts of a credential's files, in order; a problem names the field and the file. */
function readFiles(
  files: readonly (readonly [field: string, path: string, maxBytes: number])[],
): string[] | { field: string; problem: string } {
  const texts: string[] = [];
  for (const [field, path, maxBytes] of files) {
    try {
      const bytes = readAtMost(path, maxBytes + 1);
      if (bytes.length > maxBytes) {
        return { field, problem: `${path} is larger than ${maxBytes} bytes` };
      }
      texts.push(bytes.toString('utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return { field, problem: `cannot read ${path} (${code})` };
    }
  }
  return texts;
}

/** Runs a pair check whose Error says `<field>: <problem>`; the problem then names the file. */
function pairOf(paths: Record<string, string>, make: () => string): ReadResult {
  try {
    return make();
  } catch (e) {
    const message = (e as Error).message;
    const colon = message.indexOf(': ');
    const field = message.slice(0, colon);
    return { field, problem: `${paths[field]} ${message.slice(colon + 2)}` };
  }
}

function readTlsCredential(certPath: string, keyPath: string): ReadResult {
  const texts = readFiles([
    ['clientCertFile', certPath, MAX_TLS_FILE_BYTES],
    ['clientKeyFile', keyPath, MAX_TLS_FILE_BYTES],
  ]);
  if (!Array.isArray(texts)) return texts;
  return pairOf({ clientCertFile: certPath, clientKeyFile: keyPath }, () =>
    tlsCredentialOf(texts[0], texts[1]),
  );
}

/** A private_key_jwt key and its `certificateFile`, read together (signingCredentialOf). */
function readSigningCredential(certPath: string, keyPath: string, alg: SigningAlg): ReadResult {
  const texts = readFiles([
    ['privateKeyFile', keyPath, MAX_KEY_FILE_BYTES],
    ['certificateFile', certPath, MAX_CERTIFICATE_FILE_BYTES],
  ]);
  if (!Array.isArray(texts)) return texts;
  if (texts[0].trim().length === 0) {
    return { field: 'privateKeyFile', problem: `the secret in ${keyPath} is empty` };
  }
  return pairOf({ certificateFile: certPath, privateKeyFile: keyPath }, () =>
    signingCredentialOf(texts[1], texts[0], alg),
  );
}

/**
 * What a running check of a changed credential found: the new credential, or why the files on
 * disk do not make one (the field and path, never their content: README "Rotation and reload").
 */
export interface ChangedCredential {
  identity: string;
  secret?: string;
  problem?: string;
}

/**
 * The running check of a credential made of two files (a TLS certificate and key; a
 * private_key_jwt key and its certificate): re-read when either file changed; a credential is
 * offered only when the two files make a pair (a rotation half done is not one).
 */
async function readChangedPair(
  paths: readonly [string, string],
  previous: string | undefined,
  read: () => ReadResult,
): Promise<ChangedCredential | undefined> {
  const identities: string[] = [];
  for (const path of paths) {
    try {
      identities.push(fileIdentity(await stat(path)));
    } catch {
      return undefined;
    }
  }
  const identity = identities.join('|');
  if (identity === previous) return { identity };
  const credential = read();
  return typeof credential === 'string'
    ? { identity, secret: credential }
    : { identity, problem: `${credential.field}: ${credential.problem}` };
}

/** The running check of a TLS credential (readChangedPair). */
export function readChangedTlsCredential(
  certPath: string,
  keyPath: string,
  previous: string | undefined,
): Promise<ChangedCredential | undefined> {
  return readChangedPair([certPath, keyPath], previous, () => readTlsCredential(certPath, keyPath));
}

/**
 * The running check of a private_key_jwt key with a `certificateFile` (readChangedPair): the
 * key and the certificate are re-read together, so a new certificate never goes out with the
 * old key, nor the other way round.
 */
export function readChangedSigningCredential(
  certPath: string,
  keyPath: string,
  alg: SigningAlg,
  previous: string | undefined,
): Promise<ChangedCredential | undefined> {
  return readChangedPair([certPath, keyPath], previous, () =>
    readSigningCredential(certPath, keyPath, alg),
  );
}

/**
 * The asynchronous check used while running: the file is read only when its identity changed
 * (inode, size or modification time; the Kubernetes `..data` swap gives the new file a new
 * inode), so thousands of clients cost thousands of `stat`s, not reads, and never block the
 * event loop. `previous` is the identity seen last time; the result carries the new one, and a
 * problem names `field` (the client's `secretFile` or `privateKeyFile`).
 */
export async function readChangedFileSecret(
  path: string,
  previous: string | undefined,
  maxBytes = MAX_SECRET_BYTES,
  field = 'secretFile',
): Promise<ChangedCredential | undefined> {
  let identity: string;
  try {
    identity = fileIdentity(await stat(path));
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
    if (length > maxBytes) {
      return { identity, problem: `${field}: ${path} is larger than ${maxBytes} bytes` };
    }
    const secret = buffer.subarray(0, length).toString('utf8').trim();
    return secret.length > 0
      ? { identity, secret }
      : { identity, problem: `${field}: ${path} is empty` };
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}
