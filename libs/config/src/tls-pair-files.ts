import { readAtMost } from './bounded-read';
import { splitTlsCredential, tlsCredentialOf } from './tls-credential';
import { WatchedFiles, type FileCheck } from './watched-files';

/** Largest certificate (chain) or key file read. */
const MAX_TLS_FILE_BYTES = 64 * 1024;

/** The environment variables that name the pair, for messages. */
export interface TlsPairFields {
  cert: string;
  key: string;
}

/**
 * A client certificate and its key read from two files (REDIS_TLS_CERT_FILE and
 * REDIS_TLS_KEY_FILE): the certificate must parse, the key must too, and be the certificate's.
 * Throws the file system's error (its message prefixed with the field) or an Error naming the
 * field; never quotes the key.
 */
export function readTlsPair(
  certPath: string,
  keyPath: string,
  fields: TlsPairFields,
): { cert: string; key: string } {
  const read = (field: string, path: string): string => {
    try {
      const bytes = readAtMost(path, MAX_TLS_FILE_BYTES + 1);
      if (bytes.length > MAX_TLS_FILE_BYTES)
        throw new Error(`${field}: ${path} is larger than ${MAX_TLS_FILE_BYTES} bytes`);
      return bytes.toString('utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === undefined) throw e;
      throw Object.assign(new Error(`${field}: cannot read ${path} (${code})`), { code });
    }
  };
  return splitTlsCredential(
    tlsCredentialOf(read(fields.cert, certPath), read(fields.key, keyPath), fields),
  );
}

/**
 * A certificate and key pair used by connections made later (Redis's client certificate): read
 * at start, where a bad pair is an error, then looked at again on demand (WatchedFiles, both
 * files). A pair that is incomplete for a moment (a rotation writes the key before the
 * certificate, a file is missing) leaves the last good pair in use; it is reported once per
 * change of the files (README "Redis over TLS").
 */
export class TlsPairFiles {
  private readonly files: WatchedFiles<{ cert: string; key: string }>;

  constructor(certPath: string, keyPath: string, fields: TlsPairFields) {
    this.files = new WatchedFiles(
      [certPath, keyPath],
      () => readTlsPair(certPath, keyPath, fields),
      (a, b) => a.cert === b.cert && a.key === b.key,
    );
  }

  get cert(): string {
    return this.files.value.cert;
  }

  get key(): string {
    return this.files.value.key;
  }

  recheck(): FileCheck {
    return this.files.recheck();
  }
}
