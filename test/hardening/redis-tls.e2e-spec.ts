import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerRegistry } from '@nestjs/schedule';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { RedisKeys, createRedisClient, secondStreamErrorsHeard } from '@app/token-store';
import { expectStatus } from './harness';
import {
  askRedis,
  freePort,
  httpRequest,
  startRedisServer,
  sleep,
  startService,
  waitFor,
  type InProcessService,
  type ThrowawayRedis,
} from '../support';
import { createTestPki, type TestPki } from '../support/test-pki';

/**
 * Redis over TLS (README "Redis over TLS"): a `rediss://` URL, the CA of REDIS_TLS_CA_FILE trusted, and
 * that file looked at again, so a rotated Redis certificate from a new CA is trusted without a
 * restart. The redis-server has a plain loopback port too: the test inspects and reconfigures
 * Redis through it; the service knows only the TLS port. The cases run in order and build on
 * each other (Redis's certificate and the CA file are the previous case's): run the file whole.
 */
const SECRET = 'redis-tls-secret-0001';
const KEY = 'redis-tls-caller-key-0001-aaaaaaaaaaaaa';
const ADMIN_KEY = 'redis-tls-admin-key-0002-bbbbbbbbbbbbb';
const CLIENT = 'tls.client';

describe('Redis over TLS (e2e, throwaway redis-server with a TLS port)', () => {
  let oldPki: TestPki;
  let newPki: TestPki;
  let redis: ThrowawayRedis;
  let tlsPort: number;
  let idp: RunningSandbox;
  let svc: InProcessService;
  let caDir: string;
  let caFile: string;
  let keys: RedisKeys;

  /** Written beside it and renamed over it, as an operator or the kubelet replaces a file. */
  const replaceCaFile = (content: Buffer | string): void => {
    writeFileSync(`${caFile}.new`, content);
    renameSync(`${caFile}.new`, caFile);
  };
  /** Redis's certificate and key: createTestPki's server pair (for 127.0.0.1). */
  const certificateOf = (pki: TestPki) => ({
    cert: join(pki.dir, 'server.pem'),
    key: join(pki.dir, 'server.key'),
  });
  const storeState = async (target: InProcessService): Promise<string> => {
    const ready = await httpRequest(`${target.url}/health/ready`);
    expectStatus(ready, 200);
    return (ready.json().info.tokenStore as { state: string }).state;
  };
  const getToken = (target: InProcessService) =>
    httpRequest(`${target.url}/tokens/${CLIENT}`, { key: KEY });
  const adminRefresh = (target: InProcessService) =>
    httpRequest(`${target.url}/admin/clients/${CLIENT}/refresh`, {
      key: ADMIN_KEY,
      method: 'POST',
    });
  const storedValue = (): Promise<string | null> =>
    askRedis(redis.port, (r) => r.get(keys.token({ environment: 'uat', clientId: CLIENT })));
  /** Drops the service's connections (commands and the fleet channel's subscriber). */
  const killServiceConnections = async (): Promise<void> => {
    await askRedis(redis.port, async (r) => {
      await r.client('KILL', 'TYPE', 'normal');
      await r.client('KILL', 'TYPE', 'pubsub');
    });
  };
  const serviceOptions = (trustedCaFile: string) => ({
    scheduler: false,
    redis: `rediss://127.0.0.1:${tlsPort}`,
    env: { REDIS_TLS_CA_FILE: trustedCaFile },
    environments: { uat: { tokenUrl: idp.tokenUrl } },
    clients: [{ clientId: CLIENT, environment: 'uat', secret: SECRET }],
    callers: [
      { name: 'caller', keys: [KEY], clients: ['*'] },
      { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
    ],
  });

  beforeAll(async () => {
    oldPki = createTestPki();
    newPki = createTestPki();
    tlsPort = await freePort();
    const { cert, key } = certificateOf(oldPki);
    redis = await startRedisServer([
      '--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key,
      '--tls-auth-clients', 'no',
    ]); // prettier-ignore
    caDir = mkdtempSync(join(tmpdir(), 'redis-tls-ca-'));
    caFile = join(caDir, 'redis-ca.pem');
    copyFileSync(oldPki.caFile, caFile);
    idp = await startIdentitySandbox({ clients: [{ clientId: CLIENT, secret: SECRET }] });
    svc = await startService(serviceOptions(caFile));
    keys = new RedisKeys(svc.keyPrefix);
  }, 30_000);

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
    await redis?.stop();
    oldPki?.dispose();
    newPki?.dispose();
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  it('vends through Redis reached only over TLS, trusting the CA of REDIS_TLS_CA_FILE', async () => {
    expect(await storeState(svc)).toBe('up');
    const res = await getToken(svc);
    expectStatus(res, 200);
    // The encrypted entry reached Redis: the service's only way there is the TLS port.
    expect(await storedValue()).toMatch(/^\d+\|\d+\|v1\./);
    expect(svc.app.get(SchedulerRegistry).getIntervals()).toContain('redis TLS files check');
  });

  it('trusts a rotated Redis CA from the next connection, without a restart', async () => {
    // Redis presents a certificate from a new CA; the service, trusting only the old one,
    // cannot reconnect once its connections are dropped.
    const { cert, key } = certificateOf(newPki);
    await askRedis(redis.port, (r) => r.config('SET', 'tls-cert-file', cert, 'tls-key-file', key));
    await killServiceConnections();
    await waitFor('the store down', async () => (await storeState(svc)) === 'down', 5_000);
    await sleep(2_500); // reconnects keep failing meanwhile
    expect(await storeState(svc)).toBe('down');
    expect(svc.logs.lines.some((l) => l.includes('REDIS_TLS_CA_FILE changed'))).toBe(false);

    // The operator replaces the bundle: the next reconnect trusts it.
    replaceCaFile(readFileSync(newPki.caFile));
    await waitFor('the store up', async () => (await storeState(svc)) === 'up', 10_000);
    expect(
      svc.logs.entries().filter((e) => String(e.msg).startsWith('REDIS_TLS_CA_FILE changed')),
    ).toHaveLength(1);

    // And the store is used again: a forced refresh lands a new entry in Redis.
    const before = await storedValue();
    expectStatus(await adminRefresh(svc), 200);
    const after = await storedValue();
    expect(after).toMatch(/^\d+\|\d+\|v1\./);
    expect(after).not.toBe(before);
  }, 30_000);

  it('keeps the last bundle while the file holds no certificate, and says so once', async () => {
    replaceCaFile('-----BEGIN CERTIFICATE-----\nnot one\n');
    const warned = (): number =>
      svc.logs.entries().filter((e) => String(e.msg).startsWith('REDIS_TLS_CA_FILE cannot be used'))
        .length;
    await waitFor('the warning', () => warned() === 1, 6_000);

    // A dropped connection comes back on the last good bundle (the new CA's).
    await killServiceConnections();
    await waitFor('the store up', async () => (await storeState(svc)) === 'up', 10_000);
    const before = await storedValue();
    expectStatus(await adminRefresh(svc), 200);
    expect(await storedValue()).not.toBe(before);
    await sleep(2_500); // another look at the unchanged file
    expect(warned()).toBe(1);
  }, 30_000);

  it('survives connections ended mid-handshake (ioredis hears only the first error of a stream)', async () => {
    // A TLS connection ended while its handshake fails (shutdown, a test closing the service)
    // can emit a second error, the server's alert; unheard, it would end the process.
    const stranger = createTestPki();
    const heardBefore = secondStreamErrorsHeard();
    try {
      for (let i = 0; i < 60; i++) {
        const client = createRedisClient({
          mode: 'standalone',
          url: `rediss://127.0.0.1:${tlsPort}`,
          connection: { tls: { caFile: stranger.caFile } },
        });
        await sleep(i % 15);
        await client.quit().catch(() => client.disconnect());
      }
      await sleep(200); // the late alerts arrive
      // The race happened (about one connection in ten ends this way), and was heard.
      expect(secondStreamErrorsHeard()).toBeGreaterThan(heardBefore);
    } finally {
      stranger.dispose();
    }
  }, 30_000);

  it('starts and serves without Redis when the CA does not sign Redis’s certificate', async () => {
    // Redis is a shared dependency (README "Health"): a trust mistake shows in readiness and
    // the log, the replica serves from direct fetches, and nothing crashes.
    const stranger = createTestPki();
    const other = await startService(serviceOptions(stranger.caFile));
    try {
      expect(await storeState(other)).toBe('down');
      expectStatus(await getToken(other), 200);
      expect(await storeState(other)).toBe('down');
      // Said once with its reason, though every reconnect fails the same way.
      const errors = other.logs.entries().filter((e) => e.msg === 'redis connection error');
      expect(errors.length).toBeGreaterThan(1);
      const warnings = errors.filter((e) => e.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ err: { message: expect.stringMatching(/certificate/) } });
    } finally {
      await other.close();
      stranger.dispose();
    }
  }, 30_000);
});

/**
 * A Redis that asks every client for a certificate (`tls-auth-clients yes`, Redis's default once
 * TLS is on): REDIS_TLS_CERT_FILE + REDIS_TLS_KEY_FILE, looked at again like the CA file, so a
 * rotated client certificate is presented from the next connection (README "Redis over TLS").
 * The cases run in order and build on each other.
 */
describe('Redis over TLS with a client certificate (e2e)', () => {
  let serverPki: TestPki;
  let firstClientPki: TestPki;
  let nextClientPki: TestPki;
  let redis: ThrowawayRedis;
  let tlsPort: number;
  let idp: RunningSandbox;
  let svc: InProcessService;
  let dir: string;
  let certFile: string;
  let keyFile: string;

  const replace = (path: string, from: string): void => {
    copyFileSync(from, `${path}.new`);
    renameSync(`${path}.new`, path);
  };
  const storeState = async (target: InProcessService): Promise<string> => {
    const ready = await httpRequest(`${target.url}/health/ready`);
    expectStatus(ready, 200);
    return (ready.json().info.tokenStore as { state: string }).state;
  };
  const storedValue = (target: InProcessService): Promise<string | null> =>
    askRedis(redis.port, (r) =>
      r.get(new RedisKeys(target.keyPrefix).token({ environment: 'uat', clientId: CLIENT })),
    );
  const options = (env: NodeJS.ProcessEnv) => ({
    scheduler: false,
    redis: `rediss://127.0.0.1:${tlsPort}`,
    env: { REDIS_TLS_CA_FILE: serverPki.caFile, ...env },
    environments: { uat: { tokenUrl: idp.tokenUrl } },
    clients: [{ clientId: CLIENT, environment: 'uat', secret: SECRET }],
    callers: [
      { name: 'caller', keys: [KEY], clients: ['*'] },
      { name: 'ops', keys: [ADMIN_KEY], clients: [], admin: true },
    ],
  });
  const warnings = (target: InProcessService, start: string) =>
    target.logs.entries().filter((e) => String(e.msg).startsWith(start));

  beforeAll(async () => {
    serverPki = createTestPki();
    firstClientPki = createTestPki();
    nextClientPki = createTestPki();
    tlsPort = await freePort();
    redis = await startRedisServer([
      '--tls-port', String(tlsPort),
      '--tls-cert-file', join(serverPki.dir, 'server.pem'),
      '--tls-key-file', join(serverPki.dir, 'server.key'),
      '--tls-ca-cert-file', firstClientPki.caFile,
      '--tls-auth-clients', 'yes',
    ]); // prettier-ignore
    dir = mkdtempSync(join(tmpdir(), 'redis-tls-client-'));
    certFile = join(dir, 'tls.crt');
    keyFile = join(dir, 'tls.key');
    copyFileSync(firstClientPki.clientCertFile, certFile);
    copyFileSync(firstClientPki.clientKeyFile, keyFile);
    idp = await startIdentitySandbox({ clients: [{ clientId: CLIENT, secret: SECRET }] });
    svc = await startService(
      options({ REDIS_TLS_CERT_FILE: certFile, REDIS_TLS_KEY_FILE: keyFile }),
    );
  }, 30_000);

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
    await redis?.stop();
    for (const pki of [serverPki, firstClientPki, nextClientPki]) pki?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('presents the client certificate', async () => {
    expect(await storeState(svc)).toBe('up');
    expectStatus(await httpRequest(`${svc.url}/tokens/${CLIENT}`, { key: KEY }), 200);
    expect(await storedValue(svc)).toMatch(/^\d+\|\d+\|v1\./);
  });

  it('presents a rotated client certificate from the next connection; a half-written pair keeps the last one', async () => {
    // Redis now trusts only the next CA; the service's connections are dropped.
    await askRedis(redis.port, async (r) => {
      await r.config('SET', 'tls-ca-cert-file', nextClientPki.caFile);
      await r.client('KILL', 'TYPE', 'normal');
      await r.client('KILL', 'TYPE', 'pubsub');
    });
    await waitFor('the store down', async () => (await storeState(svc)) === 'down', 5_000);

    // The key is written first: the pair does not match yet, and says so once.
    replace(keyFile, nextClientPki.clientKeyFile);
    await waitFor(
      'the half-written pair reported',
      () => warnings(svc, 'REDIS_TLS_CERT_FILE cannot be used').length === 1,
      6_000,
    );
    expect(warnings(svc, 'REDIS_TLS_CERT_FILE cannot be used')[0]).toMatchObject({
      level: 'warn',
      reason: 'REDIS_TLS_KEY_FILE: is not the key of the certificate in REDIS_TLS_CERT_FILE',
    });
    expect(await storeState(svc)).toBe('down');

    // Then the certificate: the pair is adopted, and the next reconnect is accepted.
    replace(certFile, nextClientPki.clientCertFile);
    await waitFor('the store up', async () => (await storeState(svc)) === 'up', 10_000);
    expect(warnings(svc, 'REDIS_TLS_CERT_FILE changed')).toHaveLength(1);
    const before = await storedValue(svc);
    expectStatus(
      await httpRequest(`${svc.url}/admin/clients/${CLIENT}/refresh`, {
        key: ADMIN_KEY,
        method: 'POST',
      }),
      200,
    );
    const after = await storedValue(svc);
    expect(after).toMatch(/^\d+\|\d+\|v1\./);
    expect(after).not.toBe(before);
    // The key never appears in a log line.
    const key = readFileSync(keyFile, 'utf8').split('\n').slice(1, -2).join('');
    expect(svc.logs.lines.some((l) => l.includes(key.slice(0, 40)))).toBe(false);
  }, 30_000);

  // Last: a second app in this process takes over Nest's logger, so `svc`'s lines would no
  // longer be captured after it.
  it('without a client certificate, Redis is unreachable: an outage, not a crash', async () => {
    const without = await startService(options({}));
    try {
      expect(await storeState(without)).toBe('down');
      expectStatus(await httpRequest(`${without.url}/tokens/${CLIENT}`, { key: KEY }), 200);
      expect(await storedValue(without)).toBeNull();
    } finally {
      await without.close();
    }
  }, 30_000);
});
