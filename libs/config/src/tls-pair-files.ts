import { statSync } from 'node:fs';
import { readAtMost } from './bounded-read';
import type { CaBundleCheck } from './ca-bundle-file';
import { fileIdentity } from './file-identity';
import { splitTlsCredential, tlsCredentialOf } from './tls-credential';

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
 * at start, where a bad pair is an error, then looked at again on demand, like CaBundleFile: a
 * `stat` of both, and a read only when either changed. A pair that is incomplete for a moment (a
 * rotation writes the certificate before the key, a file is missing) leaves the last good pair in
 * use; it is reported once per change of the files (README "Redis over TLS").
 */
export class TlsPairFiles {
  private identity: string;
  private pair: { cert: string; key: string };

  constructor(
    readonly certPath: string,
    readonly keyPath: string,
    private readonly fields: TlsPairFields,
  ) {
    this.identity = this.identityNow();
    this.pair = readTlsPair(certPath, keyPath, fields);
  }

  get cert(): string {
    return this.pair.cert;
  }

  get key(): string {
    return this.pair.key;
  }

  recheck(): CaBundleCheck {
    let identity: string;
    try {
      identity = this.identityNow();
    } catch {
      return 'unchanged';
    }
    if (identity === this.identity) return 'unchanged';
    let pair: { cert: string; key: string };
    try {
      pair = readTlsPair(this.certPath, this.keyPath, this.fields);
    } catch (e) {
      // Unreadable for a moment: looked at again next time. A pair that does not match (one
      // file written, the other not yet): said once, and looked at again when either changes.
      if ((e as NodeJS.ErrnoException).code !== undefined) return 'unchanged';
      this.identity = identity;
      return { unusable: (e as Error).message };
    }
    this.identity = identity;
    if (pair.cert === this.pair.cert && pair.key === this.pair.key) return 'unchanged';
    this.pair = pair;
    return 'changed';
  }

  private identityNow(): string {
    return `${fileIdentity(statSync(this.certPath))}|${fileIdentity(statSync(this.keyPath))}`;
  }
}
