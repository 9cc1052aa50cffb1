import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import { createRedisClient } from './redis-client.factory';
import { RedisTls } from './redis-tls';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

/**
 * The TLS settings object is handed to ioredis, not copied: ioredis reads it at each connect, so
 * a CA adopted by recheck() reaches the next connection of every kind (README "Redis over TLS").
 */
describe('RedisTls', () => {
  const first = signingCertificate({ kind: 'ec', cn: 'redis CA one' }).cert;
  const second = signingCertificate({ kind: 'ec', cn: 'redis CA two' }).cert;
  let dir: string;
  let caFile: string;
  const clients: (Redis | Cluster)[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'redis-tls-'));
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, first);
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is off without TLS settings, trusts Node’s CAs without a CA file, else the file’s', () => {
    expect(RedisTls.from(undefined)).toBeNull();
    expect(RedisTls.from({})).toBeNull();
    expect(RedisTls.from({ tls: {} })?.options).toEqual({});
    expect(RedisTls.from({ tls: { caFile } })?.options).toEqual({ ca: first });
  });

  it('replaces `ca` in place when the file changes', () => {
    const sut = RedisTls.from({ tls: { caFile } })!;
    const options = sut.options;
    expect(sut.recheck()).toEqual({ ca: 'unchanged', clientCertificate: 'unchanged' });
    writeFileSync(`${caFile}.new`, second);
    renameSync(`${caFile}.new`, caFile);
    expect(sut.recheck()).toEqual({ ca: 'changed', clientCertificate: 'unchanged' });
    expect(sut.options).toBe(options);
    expect(options.ca).toBe(second);
  });

  /** A client on an address nothing listens on: only its options are looked at. */
  const made = <T extends Redis | Cluster>(client: T): T => {
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };

  it('is shared by a standalone client and its duplicates', () => {
    const tls = RedisTls.from({ tls: { caFile } })!;
    const client = made(
      createRedisClient({ mode: 'standalone', url: 'rediss://127.0.0.1:1' }, tls) as Redis,
    );
    expect(client.options.tls).toBe(tls.options);
    expect(made(client.duplicate()).options.tls).toBe(tls.options);
  });

  it('is shared by a Sentinel client, for the data node and for the Sentinels', () => {
    const connection = { tls: { caFile } };
    const tls = RedisTls.from(connection)!;
    const client = made(
      createRedisClient(
        { mode: 'sentinel', sentinels: [{ host: '127.0.0.1', port: 1 }], name: 'm', connection },
        tls,
      ) as Redis,
    );
    expect(client.options.tls).toBe(tls.options);
    expect(client.options.sentinelTLS).toBe(tls.options);
    expect(client.options.enableTLSForSentinelMode).toBe(true);
  });

  it('is shared by a Cluster client’s nodes and its duplicate', () => {
    const connection = { tls: { caFile } };
    const tls = RedisTls.from(connection)!;
    const cluster = made(
      createRedisClient(
        { mode: 'cluster', nodes: [{ host: '127.0.0.1', port: 1 }], connection },
        tls,
      ) as Cluster,
    );
    expect(cluster.options.redisOptions?.tls).toBe(tls.options);
    expect(made(cluster.duplicate()).options.redisOptions?.tls).toBe(tls.options);
  });
});
