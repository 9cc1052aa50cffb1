import { SentinelConnector } from 'ioredis';
// The class ioredis itself uses for every non-Sentinel connection (it is not re-exported at the
// package root; the package has no export map, so this path is the one ioredis loads).
import { StandaloneConnector } from 'ioredis/built/connectors';

/** What is patched: a connector's `connect`, which opens one stream. */
interface ConnectorPrototype {
  connect: (this: unknown, onError: unknown) => Promise<NodeJS.EventEmitter>;
}

const PATCHED = new WeakSet<object>();
let secondErrors = 0;

/**
 * ioredis listens for a connection's `error` only once (Redis#connect and its connectors). A TLS
 * connection ended while its handshake fails (a quit at shutdown, a Cluster dropping its
 * subscriber or a slots refresher on timeout) can emit a second one, the server's alert, which,
 * unheard, is thrown out of the event loop and ends the process (README "Redis over TLS"). So
 * every stream that ioredis's two connectors open, for the service's clients and for the ones
 * ioredis makes itself (a Cluster's subscriber and refreshers, the connections to the
 * Sentinels), gets a lasting listener; ioredis still handles the first error as before. Done
 * once per process, on the connectors' prototypes, before the first client is made.
 */
export function hearEveryStreamError(): void {
  for (const connector of [StandaloneConnector, SentinelConnector]) {
    const prototype = connector.prototype as unknown as ConnectorPrototype;
    if (PATCHED.has(prototype)) continue;
    PATCHED.add(prototype);
    const connect = prototype.connect;
    prototype.connect = async function (this: unknown, onError: unknown) {
      const stream = await connect.call(this, onError);
      let heard = 0;
      stream.on('error', () => {
        // The first reaches ioredis's own listener, which reconnects and reports it.
        if (++heard > 1) secondErrors++;
      });
      return stream;
    };
  }
}

/** How many errors beyond a stream's first were heard (and so did not end the process). */
export function secondStreamErrorsHeard(): number {
  return secondErrors;
}
