import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO_CLIENTS } from './demo-clients';
import { readSandboxEnv } from './sandbox-env';

describe('readSandboxEnv', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-env-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to port 4000 on all interfaces with the demo clients', () => {
    expect(readSandboxEnv({})).toEqual({
      options: {
        port: 4000,
        host: '0.0.0.0',
        expiresIn: 1200,
        issuer: 'http://localhost:4000',
        audience: undefined,
        clients: DEMO_CLIENTS,
      },
      clientsSource: 'demo',
    });
  });

  it('has the two demo clients with the documented secrets and scopes', () => {
    expect(DEMO_CLIENTS).toEqual([
      {
        clientId: 'demo.client',
        secret: 'demo-secret-not-real',
        scopes: ['deals-read', 'permissions-read'],
      },
      {
        clientId: 'demo-basic.client',
        secret: 'demo:basic%secret-not-real',
        scopes: ['deals-read', 'permissions-read'],
      },
    ]);
  });

  it('reads every variable', () => {
    const config = readSandboxEnv({
      SANDBOX_PORT: '4100',
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_EXPIRES_IN: '60',
      SANDBOX_ISSUER: 'http://identity-sandbox:4100',
      SANDBOX_AUDIENCE: 'api',
      SANDBOX_CLIENTS: '[{"clientId":"a","secret":"s","scopes":["x","y"]}]',
    });
    expect(config).toEqual({
      options: {
        port: 4100,
        host: '127.0.0.1',
        expiresIn: 60,
        issuer: 'http://identity-sandbox:4100',
        audience: 'api',
        clients: [{ clientId: 'a', secret: 's', scopes: ['x', 'y'] }],
      },
      clientsSource: 'inline',
    });
  });

  it('derives the default issuer from the port', () => {
    expect(readSandboxEnv({ SANDBOX_PORT: '4321' }).options.issuer).toBe('http://localhost:4321');
  });

  it('reads clients from a file', () => {
    const file = join(dir, 'clients.json');
    writeFileSync(file, JSON.stringify([{ clientId: 'f', secret: 'fs' }]));
    expect(readSandboxEnv({ SANDBOX_CLIENTS: file })).toMatchObject({
      options: { clients: [{ clientId: 'f', secret: 'fs', scopes: [] }] },
      clientsSource: 'file',
    });
  });

  it.each<[Record<string, string>, string]>([
    [{ SANDBOX_PORT: 'http' }, 'SANDBOX_PORT must be a whole number, got "http"'],
    [{ SANDBOX_PORT: '70000' }, 'SANDBOX_PORT must be an integer from 0 to 65535'],
    [{ SANDBOX_EXPIRES_IN: '0' }, 'SANDBOX_EXPIRES_IN must be an integer from 1 to 315360000'],
    [{ SANDBOX_EXPIRES_IN: '-5' }, 'SANDBOX_EXPIRES_IN must be a whole number, got "-5"'],
    [
      { SANDBOX_CLIENTS: '/no/such/file.json' },
      'SANDBOX_CLIENTS: cannot read the file /no/such/file.json (ENOENT)',
    ],
    [
      { SANDBOX_CLIENTS: '[{"clientId":"a","secret":"top-secret"' },
      'SANDBOX_CLIENTS: the value is not valid JSON',
    ],
    [
      { SANDBOX_CLIENTS: '[{"clientId":"a"}]' },
      'SANDBOX_CLIENTS: clients[0].secret must be a non-empty string',
    ],
    [
      { SANDBOX_CLIENTS: '[{"clientId":"a","secret":"s","scopes":["has space"]}]' },
      'SANDBOX_CLIENTS: clients[0].scopes must be an array of scope tokens',
    ],
  ])('refuses %j', (env, message) => {
    expect(() => readSandboxEnv(env)).toThrow(message);
  });

  it('never quotes a secret in an error', () => {
    let message = '';
    try {
      readSandboxEnv({ SANDBOX_CLIENTS: '[{"clientId":"a","secret":"top-secret"}' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe('');
    expect(message).not.toContain('top-secret');
  });
});
