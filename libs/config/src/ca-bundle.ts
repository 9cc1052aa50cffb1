import { X509Certificate } from 'node:crypto';
import { readAtMost } from './bounded-read';

/** Largest CA bundle read: a full system bundle is about 220 KiB. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

/**
 * An environment's `caFile`: its PEM text, at most MAX_CA_FILE_BYTES, holding at least one
 * certificate. Read at start (the configuration check) and when the file changes (the IdP
 * calls' pools). Throws the file system's error when it cannot be read, else an Error whose
 * message is the problem (`<path> holds no PEM certificate`).
 */
export function readCaBundle(path: string): string {
  const bytes = readAtMost(path, MAX_CA_FILE_BYTES + 1);
  if (bytes.length > MAX_CA_FILE_BYTES) {
    throw new Error(`${path} is larger than ${MAX_CA_FILE_BYTES} bytes`);
  }
  const pem = bytes.toString('utf8');
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`${path} holds no PEM certificate`);
  }
  return pem;
}

/**
 * Why the CA file named by `field` cannot be used at start (`<field>: cannot read <path> (ENOENT)`,
 * `<field>: <path> holds no PEM certificate`), or undefined when it can.
 */
export function caFileProblem(field: string, path: string): string | undefined {
  try {
    readCaBundle(path);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === undefined
      ? `${field}: ${(e as Error).message}`
      : `${field}: cannot read ${path} (${code})`;
  }
}
