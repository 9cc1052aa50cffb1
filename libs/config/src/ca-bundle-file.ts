import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { readCaBundle } from './ca-bundle';
import { fileIdentity } from './file-identity';

/**
 * What a look at a CA file found: `changed` when it now holds another bundle (adopted),
 * `unchanged` when nothing usable is new, `unusable` (once per version of the file) when it was
 * read and holds no certificate.
 */
export type CaBundleCheck = 'unchanged' | 'changed' | { readonly unusable: string };

/**
 * A CA file trusted by connections made later (an environment's `caFile`, REDIS_TLS_CA_FILE):
 * opened at start, where a missing or certificate-less file is an error, then looked at again on
 * demand: a `stat`, and a read only when the file's identity changed. While the file is missing
 * or unreadable (a swap in progress) or holds no certificate, the last good bundle stays in use
 * (README "Egress and trust").
 */
export class CaBundleFile {
  private identity: string;
  private bundle: string;
  private bundleDigest: string;

  /** Throws the file system's error, or readCaBundle's, when the file cannot be used. */
  constructor(readonly path: string) {
    this.identity = fileIdentity(statSync(path));
    this.bundle = readCaBundle(path);
    this.bundleDigest = sha256(this.bundle);
  }

  /** The PEM text of the bundle in use. */
  get pem(): string {
    return this.bundle;
  }

  /** SHA-256 (hex) of the bundle in use: what a connection pool is keyed by. */
  get digest(): string {
    return this.bundleDigest;
  }

  recheck(): CaBundleCheck {
    let identity: string;
    try {
      identity = fileIdentity(statSync(this.path));
    } catch {
      return 'unchanged';
    }
    if (identity === this.identity) return 'unchanged';
    let pem: string;
    try {
      pem = readCaBundle(this.path);
    } catch (e) {
      // Unreadable for a moment: looked at again next time. Read but unusable: said once, and
      // not read again until it changes.
      if ((e as NodeJS.ErrnoException).code !== undefined) return 'unchanged';
      this.identity = identity;
      return { unusable: (e as Error).message };
    }
    this.identity = identity;
    const digest = sha256(pem);
    if (digest === this.bundleDigest) return 'unchanged';
    this.bundle = pem;
    this.bundleDigest = digest;
    return 'changed';
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
