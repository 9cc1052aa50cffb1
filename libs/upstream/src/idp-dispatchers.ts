import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';

/**
 * The HTTP connection pools of the IdP calls, one per trust setting (the environment's
 * `caFile`, or none). Each honours `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (read from the
 * process environment when the pool is made) with a CONNECT tunnel, so the TLS session, and
 * the credentials in it, run end to end between the service and the IdP; the extra CAs are
 * trusted for the IdP both directly and through the tunnel (README "Egress and trust").
 */
export class IdpDispatchers {
  private readonly pools = new Map<string, Dispatcher>();

  /** The pool for an environment's caFile (read once, at the first call that needs it). */
  for(caFile: string | undefined): Dispatcher {
    const key = caFile ?? '';
    let pool = this.pools.get(key);
    if (!pool) {
      // A `ca` option replaces Node's bundled CAs: the private CA is trusted beside them.
      const tls =
        caFile === undefined ? {} : { ca: [...rootCertificates, readFileSync(caFile, 'utf8')] };
      pool = new EnvHttpProxyAgent({ connect: tls, requestTls: tls });
      this.pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
  }
}
