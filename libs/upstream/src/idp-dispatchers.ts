import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { splitTlsCredential } from '@app/config';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

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
 * `caFile`, a client certificate). Each honours `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (read
 * from the process environment when the pool is made) with a CONNECT tunnel, so the TLS
 * session, and the credentials in it, run end to end between the service and the IdP; the
 * extra CAs and the client certificate apply both directly and through the tunnel (README
 * "Egress and trust").
 */
export class IdpDispatchers {
  private readonly pools = new Map<string, Dispatcher>();
  /** The pool each client-certificate owner uses now. */
  private readonly owners = new Map<string, string>();

  for(connection: IdpConnection = {}): Dispatcher {
    const { caFile, clientCredential, owner } = connection;
    const key = `${caFile ?? ''}\u0000${clientCredential === undefined ? '' : digest(clientCredential)}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const tls = {
        // A `ca` option replaces Node's bundled CAs: the private CA is trusted beside them.
        ...(caFile !== undefined
          ? { ca: [...rootCertificates, readFileSync(caFile, 'utf8')] }
          : {}),
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
