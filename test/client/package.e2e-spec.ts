import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { type InProcessService, startService } from '../support';

/**
 * The SDK as another service gets it: `npm run build` writes dist/client (global-setup builds
 * when a source is newer); it is packed, installed into an empty project with npm, required by
 * plain Node and type-checked by a consumer's tsc, then used against the real service.
 */
const ROOT = join(__dirname, '../..');
const DIST = join(ROOT, 'dist/client');
const KEY = 'caller-key-package-0001-aaaaaaaaaaaaaaaa';
const SECRET = 'sandbox-secret-package-0001';

describe('@token-vendor/client as an installed package (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  let project: string;

  beforeAll(async () => {
    idp = await startIdentitySandbox({ clients: [{ clientId: 'pkg.client', secret: SECRET }] });
    svc = await startService({
      scheduler: false,
      environments: { uat: { tokenUrl: idp.tokenUrl } },
      clients: [{ clientId: 'pkg.client', environment: 'uat', secret: SECRET }],
      callers: [{ name: 'pkg-service', keys: [KEY], clients: ['*'] }],
    });
    project = mkdtempSync(join(tmpdir(), 'tv-sdk-consumer-'));
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
    );
    const npm = (args: string[]) =>
      execFileSync('npm', [...args, '--no-audit', '--no-fund', '--offline', '--loglevel=error'], {
        cwd: project,
        stdio: 'pipe',
        timeout: 120_000,
      });
    npm(['pack', DIST, '--pack-destination', project]);
    const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'))!;
    npm(['install', `./${tarball}`]);
  }, 180_000);

  afterAll(async () => {
    if (project) rmSync(project, { recursive: true, force: true });
    await svc?.close();
    await idp?.close();
  });

  it('installs with no dependencies and declares Node >= 20', () => {
    const installed = JSON.parse(
      readFileSync(join(project, 'node_modules/@token-vendor/client/package.json'), 'utf8'),
    );
    expect(installed).toMatchObject({ name: '@token-vendor/client', engines: { node: '>=20' } });
    expect(installed.dependencies).toBeUndefined();
    expect(readdirSync(join(project, 'node_modules')).sort()).toEqual([
      '.package-lock.json',
      '@token-vendor',
    ]);
    const files = readdirSync(join(project, 'node_modules/@token-vendor/client'));
    expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'nest', 'README.md']));
    expect(
      files.filter((f) => f.endsWith('.spec.js') || (f.endsWith('.ts') && !f.endsWith('.d.ts'))),
    ).toEqual([]);
  });

  it('is required by plain Node and gets a token from the service', async () => {
    const script = `
      const { createTokenVendorClient, UnknownClientError } = require('@token-vendor/client');
      const vendor = createTokenVendorClient({ baseUrl: process.env.VENDOR_URL, callerKey: process.env.CALLER_KEY });
      (async () => {
        const token = await vendor.getToken('pkg.client');
        const again = await vendor.getToken('pkg.client');
        const missing = await vendor.getToken('nope.client').catch((e) => e instanceof UnknownClientError);
        console.log(JSON.stringify({ client: token.client_id, same: token === again, missing }));
      })();`;
    // Asynchronously: the service answering it lives in this process.
    const { stdout: out } = await promisify(execFile)(process.execPath, ['-e', script], {
      cwd: project,
      env: { PATH: process.env.PATH, VENDOR_URL: svc.url, CALLER_KEY: KEY },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(JSON.parse(out)).toEqual({ client: 'pkg.client', same: true, missing: true });
  }, 60_000);

  it('its type declarations compile in a consumer project', () => {
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { createTokenVendorClient, TokenVendorError, type VendedToken } from '@token-vendor/client';
       import { TokenVendorModule, TOKEN_VENDOR_CLIENT } from '@token-vendor/client/nest';
       const vendor = createTokenVendorClient({ baseUrl: 'http://vendor', callerTokenFile: '/var/run/token' });
       export const token: Promise<VendedToken> = vendor.getToken('a.client', { environment: 'uat', minTtl: 30 });
       export const answer: Promise<Response> = vendor.fetchWithToken('a.client', 'https://api/x', { method: 'POST' });
       export const isError = (e: unknown): boolean => e instanceof TokenVendorError && e.status === 404;
       export { TokenVendorModule, TOKEN_VENDOR_CLIENT };
      `,
    );
    // The nest entry point's types need @nestjs/common (an optional peer a Nest consumer has):
    // linked in from this repository after the install checks above.
    symlinkSync(join(ROOT, 'node_modules/@nestjs'), join(project, 'node_modules/@nestjs'), 'dir');
    const tsc = require.resolve('typescript/bin/tsc');
    execFileSync(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--target',
        'es2022',
        '--experimentalDecorators',
        '--typeRoots',
        join(ROOT, 'node_modules/@types'),
        '--types',
        'node',
        'consumer.ts',
      ],
      { cwd: project, stdio: 'pipe' },
    );
  }, 120_000);
});
