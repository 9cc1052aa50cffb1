import { Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { rootCertificates } from 'node:tls';
import { CaBundleFile, splitTlsCredential } from '@app/config';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

/**
 * How long a caFile's bundle is used before the file is looked at again (a `stat`; read only
 * when it changed): a CA bundle replaced on disk is trusted from the next IdP call this long
 * after, without a restart (README "Egress and trust").
 */
export const CA_FILE_RECHECK_MS = 2_000;

/** A caFile and when it was last looked at. */
interface WatchedCaFile {
  readonly file: CaBundleFile;
  checkedAt: number;
}

/** What shapes a connection to an IdP: the extra CAs to trust and the client certificate. */
export interface IdpConnection {
  /** The environment's caFile. */
  caFile?: string;
  /** tls_client_auth: the credential (certificate PEM then key PEM) presented in the handshake. */
  clientCredential?: string;
  /** Who uses it (`environment/clientId`): a client's previous certificate pool is closed. */
  owner?: string;
}

/**
 * The HTTP connection pools of the IdP calls, one per connection setting (the environment's
 * `caFile` and the bundle it holds now, a client certificate). Each honours `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (read
 * from the process environment when the pool is made) with a CONNECT tunnel, so the TLS
 * session, and the credentials in it, run end to end between the service and the IdP; the
 * extra CAs and the client certificate apply both directly and through the tunnel (README
 * "Egress and trust").
 */
export class IdpDispatchers {
  private readonly logger = new Logger('IdpDispatchers');
  private readonly pools = new Map<string, Dispatcher>();
  /** The pool each client-certificate owner uses now. */
  private readonly owners = new Map<string, string>();
  private readonly caFiles = new Map<string, WatchedCaFile>();

  /** @param caRecheckMs how long a caFile's bundle is used before the file is looked at again */
  constructor(private readonly caRecheckMs = CA_FILE_RECHECK_MS) {}

  for(connection: IdpConnection = {}): Dispatcher {
    const { caFile, clientCredential, owner } = connection;
    const ca = caFile === undefined ? undefined : this.caBundle(caFile);
    // The bundle's digest is part of the key: a replaced bundle gets a new pool.
    const key = `${caFile ?? ''}\u0000${ca?.digest ?? ''}\u0000${clientCredential === undefined ? '' : digest(clientCredential)}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const tls = {
        // A `ca` option replaces Node's bundled CAs: the private CA is trusted beside them.
        ...(ca !== undefined ? { ca: [...rootCertificates, ca.pem] } : {}),
        ...(clientCredential !== undefined ? splitTlsCredential(clientCredential) : {}),
      };
      pool = new EnvHttpProxyAgent({ connect: tls, requestTls: tls });
      this.pools.set(key, pool);
    }
    if (owner !== undefined && clientCredential !== undefined) this.switchOwner(owner, key);
    return pool;
  }

  /**
   * At shutdown every caller's request has been answered already (README "Shutdown"); what is
   * still in flight is a background refresh, which must not hold the exit for an IdP's timeout:
   * the pools are destroyed, aborting it, not closed (close() waits for it).
   */
  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    this.owners.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  /**
   * The caFile's bundle, looked at again every caRecheckMs. A file that is missing, holds no
   * certificate or is cut off for a moment (being replaced) leaves the last bundle in use; at start the
   * configuration check has already refused such a file (README "Egress and trust").
   */
  private caBundle(path: string): CaBundleFile {
    const now = performance.now();
    const known = this.caFiles.get(path);
    if (known === undefined) {
      const file = new CaBundleFile(path);
      this.caFiles.set(path, { file, checkedAt: now });
      return file;
    }
    if (now - known.checkedAt < this.caRecheckMs) return known.file;
    known.checkedAt = now;
    const previousDigest = known.file.digest;
    const check = known.file.recheck();
    if (check === 'changed') {
      this.logger.log({ msg: 'caFile changed; new IdP connections trust its bundle', path });
      this.closePools(`${path}\u0000${previousDigest}\u0000`);
    } else if (check !== 'unchanged') {
      this.logger.warn({
        msg: 'caFile cannot be used; the previous bundle stays',
        path,
        reason: check.unusable,
      });
    }
    return known.file;
  }

  /** Closes the pools whose key starts with `prefix` once their requests in flight are done. */
  private closePools(prefix: string): void {
    for (const [key, pool] of this.pools) {
      if (!key.startsWith(prefix)) continue;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    }
  }

  /** A rotated certificate's old pool is closed (after its requests in flight) once unused. */
  private switchOwner(owner: string, key: string): void {
    const previous = this.owners.get(owner);
    this.owners.set(owner, key);
    if (previous === undefined || previous === key) return;
    if ([...this.owners.values()].includes(previous)) return;
    const old = this.pools.get(previous);
    this.pools.delete(previous);
    void old?.close().catch(() => undefined);
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
