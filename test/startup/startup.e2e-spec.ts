import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ERROR_CODES } from '@app/errors';
import { type InProcessService, startService } from '../support';

const MAIN = join(__dirname, '../../dist/apps/token-vendor/main.js');

/** Runs the production entry point with an environment; returns how it ended. */
function runMain(env: Record<string, string>): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 15_000,
  });
  return { status: result.status, stderr: result.stderr };
}

describe('start-up with a bad configuration (production entry point)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tv-startup-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('stops with exit 78 and one message naming every bad field, never the inline secret', () => {
    const config = join(dir, 'bad.yaml');
    writeFileSync(
      config,
      [
        'environments:',
        '  uat: { tokenUrl: "ftp://idp.example/connect/token" }',
        'clients:',
        '  - clientId: a.client',
        '    environment: uat',
        '    secret: inline-secret-canary-123',
        '  - clientId: b.client',
        '    environment: nowhere',
        '    secretEnv: B_SECRET',
        'refresh: { ratio: 1.5 }',
      ].join('\n'),
    );
    const { status, stderr } = runMain({ TOKEN_VENDOR_CONFIG: config });
    expect(status).toBe(78);
    const line = JSON.parse(stderr.trim().split('\n').at(-1)!);
    expect(line.level).toBe('fatal');
    expect(line.problems).toEqual(
      expect.arrayContaining([
        'clients[0].secret: secrets are never written inline; use secretFile or secretEnv',
        'environments.uat.tokenUrl: must be an http(s) URL',
        'refresh.ratio: Too big: expected number to be <1',
      ]),
    );
    expect(line.problems.some((p: string) => p.startsWith('clients[0].secretFile:'))).toBe(true);
    expect(stderr).not.toContain('inline-secret-canary-123');
  });

  it('refuses to start with Redis and no encryption key', () => {
    const config = join(dir, 'ok.yaml');
    writeFileSync(
      config,
      'environments:\n  uat: { tokenUrl: "http://127.0.0.1:9/connect/token" }\n',
    );
    const { status, stderr } = runMain({
      TOKEN_VENDOR_CONFIG: config,
      REDIS_URL: 'redis://:pw-canary@127.0.0.1:6379',
    });
    expect(status).toBe(78);
    expect(JSON.parse(stderr.trim()).problems).toEqual([
      'TOKEN_VENDOR_ENCRYPTION_KEYS: required whenever Redis is used (kid:base64-32-bytes[,kid:key...])',
    ]);
    expect(stderr).not.toContain('pw-canary');
  });

  it('requires TOKEN_VENDOR_CONFIG outside npm start', () => {
    const { status, stderr } = runMain({});
    expect(status).toBe(78);
    expect(JSON.parse(stderr.trim()).problems).toEqual([
      'TOKEN_VENDOR_CONFIG: required (path of the YAML configuration)',
    ]);
  });
});

describe('OpenAPI document', () => {
  let svc: InProcessService;
  beforeAll(async () => {
    svc = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: 'http://127.0.0.1:9/connect/token' } },
      clients: [{ clientId: 'a.client', environment: 'uat', secret: 's' }],
      callers: [{ name: 'c', keys: ['k-0000000000000000'], clients: ['*'] }],
    });
  });
  afterAll(() => svc.close());

  it('is served at /docs-json and describes every endpoint with its error bodies', async () => {
    const res = await request(svc.url).get('/docs-json').expect(200);
    const paths = res.body.paths as Record<
      string,
      Record<string, { responses: Record<string, unknown> }>
    >;
    expect(Object.keys(paths).sort()).toEqual(
      [
        '/admin/clients',
        '/admin/clients/{clientId}/refresh',
        '/admin/reload',
        '/health/live',
        '/health/ready',
        '/tokens/{clientId}',
        '/tokens/{clientId}/rejections',
      ].sort(),
    );
    expect(Object.keys(paths['/tokens/{clientId}'].get.responses).sort()).toEqual([
      '200',
      '400',
      '401',
      '404',
      '429',
      '502',
      '503',
    ]);
    expect(res.body.components.schemas.ErrorBodyDto.required).toEqual(['error', 'message']);
    // The enum is the one list errorBody() and DomainError are typed with: every code an
    // answer can carry, the drain's included (README "API", "Shutdown").
    expect(res.body.components.schemas.ErrorBodyDto.properties.error.enum).toEqual([
      ...ERROR_CODES,
    ]);
    expect(ERROR_CODES).toContain('shutting_down');
    expect(res.body.info.description).toContain('503 `shutting_down`');
    expect(
      (paths['/tokens/{clientId}'].get.responses['503'] as { description: string }).description,
    ).toContain('shutting_down');
    expect(res.body.components.schemas.VendedTokenDto.required).toEqual(
      expect.arrayContaining([
        'access_token',
        'token_type',
        'expires_in',
        'expires_at',
        'client_id',
        'environment',
      ]),
    );
  });

  it('serves the UI at /docs', async () => {
    const res = await request(svc.url).get('/docs').expect(200);
    expect(res.text).toContain('swagger');
  });
});
