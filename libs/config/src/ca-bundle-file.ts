import { createHash } from 'node:crypto';
import { readCaBundle } from './ca-bundle';
import { WatchedFiles, type FileCheck } from './watched-files';

/** What a look at a CA file found (WatchedFiles' answer). */
export type CaBundleCheck = FileCheck;

/**
 * A CA file trusted by connections made later (an environment's `caFile`, REDIS_TLS_CA_FILE):
 * opened at start, where a missing or certificate-less file is an error, then looked at again on
 * demand (WatchedFiles): the last good bundle stays in use while the file is missing, unreadable
 * or holds no usable certificate (README "Egress and trust").
 */
export class CaBundleFile {
  private readonly file: WatchedFiles<{ pem: string; digest: string }>;

  /** Throws the file system's error, or readCaBundle's, when the file cannot be used. */
  constructor(readonly path: string) {
    this.file = new WatchedFiles(
      [path],
      () => {
        const pem = readCaBundle(path);
        return { pem, digest: createHash('sha256').update(pem).digest('hex') };
      },
      (a, b) => a.digest === b.digest,
    );
  }

  /** The PEM text of the bundle in use. */
  get pem(): string {
    return this.file.value.pem;
  }

  /** SHA-256 (hex) of the bundle in use: what a connection pool is keyed by. */
  get digest(): string {
    return this.file.value.digest;
  }

  recheck(): CaBundleCheck {
    return this.file.recheck();
  }
}
