/**
 * docker-compose.yml cannot run here (no Docker engine), so it is read: the
 * three services wired together, and the demo config and secrets under
 * deploy/compose consistent with the sandbox IdP's clients.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, posix, relative } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(__dirname, '..', '..');
const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
const services = compose.services;
const vendor = services['token-vendor'];
const sandbox = services['identity-sandbox'];

/** Host path (on disk) behind a container path, through the service's bind mounts. */
function hostPath(service: { volumes?: string[] }, containerPath: string): string {
  for (const volume of service.volumes ?? []) {
    const [source, target] = volume.split(':');
    const rest = posix.relative(target, containerPath);
    if (rest === '' || (!rest.startsWith('..') && !isAbsolute(rest))) {
      expect(source.startsWith('./')).toBe(true); // a bind mount from the repository
      return join(ROOT, source, rest);
    }
  }
  throw new Error(`${containerPath} is not mounted`);
}

const configPath = () => hostPath(vendor, vendor.environment.TOKEN_VENDOR_CONFIG);
const config = () => parse(readFileSync(configPath(), 'utf8'));
const sandboxClients = (): { clientId: string; secret: string; scopes: string[] }[] =>
  JSON.parse(readFileSync(hostPath(sandbox, sandbox.environment.SANDBOX_CLIENTS), 'utf8'));

describe('docker-compose.yml', () => {
  it('has redis, the sandbox IdP and the service', () => {
    expect(Object.keys(services).sort()).toEqual(['identity-sandbox', 'redis', 'token-vendor']);
    expect(services.redis.image).toBe('redis:7-alpine');
    expect(services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('builds both app services from the Dockerfile, the sandbox from its own target', () => {
    expect(vendor.build).toEqual({ context: '.', dockerfile: 'Dockerfile', target: 'runtime' });
    expect(sandbox.build).toEqual({
      context: '.',
      dockerfile: 'Dockerfile',
      target: 'identity-sandbox',
    });
    // Each image's CMD and HEALTHCHECK: the service, and the sandbox on SANDBOX_PORT.
    expect(vendor.command).toBeUndefined();
    expect(sandbox.command).toBeUndefined();
    expect(sandbox.healthcheck).toBeUndefined();
    const stages = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').match(/^FROM \S+ AS (\S+)$/gm)!;
    expect(stages.map((l) => l.split(' ').pop())).toEqual(
      expect.arrayContaining(['runtime', 'identity-sandbox']),
    );
  });

  it('starts the service after a healthy Redis and the sandbox', () => {
    expect(vendor.depends_on.redis).toEqual({ condition: 'service_healthy' });
    expect(vendor.depends_on['identity-sandbox']).toEqual({ condition: 'service_healthy' });
  });

  it('points the service at the redis service', () => {
    const url = new URL(vendor.environment.REDIS_URL);
    expect([url.protocol, url.hostname, url.port]).toEqual(['redis:', 'redis', '6379']);
  });

  it('gives the service a demo-only encryption key of 32 bytes', () => {
    const [kid, key, ...rest] = vendor.environment.TOKEN_VENDOR_ENCRYPTION_KEYS.split(':');
    expect([kid, rest]).toEqual(['demo', []]);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(Buffer.from(key, 'base64').toString()).toContain('demo');
  });

  it('runs the service with a read-only root, a tmpfs /tmp and read-only mounts', () => {
    for (const service of [vendor, sandbox]) {
      expect(service.read_only).toBe(true);
      expect(service.tmpfs).toEqual(['/tmp']);
      for (const volume of service.volumes) expect(volume.endsWith(':ro')).toBe(true);
    }
    // Published on the host's loopback only: the demo keys are public.
    expect(vendor.ports).toEqual(['127.0.0.1:3000:3000', '127.0.0.1:9464:9464']);
    expect(sandbox.ports).toEqual([`127.0.0.1:4000:${sandbox.environment.SANDBOX_PORT}`]);
  });

  it('mounts the configuration file named by TOKEN_VENDOR_CONFIG', () => {
    expect(vendor.environment.TOKEN_VENDOR_CONFIG).toBe('/etc/token-vendor/config.yaml');
    expect(relative(ROOT, configPath())).toBe('deploy/compose/config.yaml');
    expect(statSync(configPath()).isFile()).toBe(true);
  });
});

describe('deploy/compose demo material', () => {
  it('sends the uat environment to the sandbox by service name and port', () => {
    const url = new URL(config().environments.uat.tokenUrl);
    expect(url.hostname).toBe('identity-sandbox');
    expect(url.port).toBe(sandbox.environment.SANDBOX_PORT);
    expect(url.pathname).toBe('/connect/token');
  });

  it('configures the two demo clients', () => {
    const clients = config().clients;
    expect(clients.map((c: { clientId: string }) => c.clientId)).toEqual([
      'demo.client',
      'demo-basic.client',
    ]);
    expect(clients[0]).toMatchObject({ environment: 'uat', scope: 'deals-read' });
    expect(clients[1]).toMatchObject({ environment: 'uat', authMethod: 'client_secret_basic' });
    expect(JSON.stringify(config())).not.toMatch(/"(secret|clientSecret)"/);
  });

  it('has the same fake secrets in the secret files as in the sandbox clients', () => {
    const known = new Map(sandboxClients().map((c) => [c.clientId, c]));
    const expected: Record<string, string> = {
      'demo.client': 'demo-secret-not-real',
      'demo-basic.client': 'demo:basic%secret-not-real',
    };
    for (const client of config().clients) {
      const file = hostPath(vendor, client.secretFile);
      expect(existsSync(file)).toBe(true);
      const secret = readFileSync(file, 'utf8');
      expect(secret).toBe(expected[client.clientId]);
      expect(known.get(client.clientId)?.secret).toBe(secret);
      for (const scope of client.scope?.split(' ') ?? []) {
        expect(known.get(client.clientId)?.scopes).toContain(scope);
      }
    }
  });

  it('lets the demo caller use every client as admin, by key hash only', () => {
    const hash = createHash('sha256').update('demo-caller-key-not-secret').digest('hex');
    expect(config().callers).toEqual([
      { name: 'demo-caller', keySha256: [hash], clients: ['*'], admin: true },
    ]);
    expect(config().refresh).toEqual({ ratio: 0.75, minTtlSeconds: 30 });
  });
});
