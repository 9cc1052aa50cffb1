/**
 * `npm start` / `npm run start:dev`: the demo follows SANDBOX_PORT and PORT (its
 * configuration too), and start:dev runs the service in watch mode.
 */
import { parseServiceConfig } from '@app/config';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, httpRequest } from '../support';

const ROOT = join(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'start-demo.js');
const DEMO_CALLER_KEY = 'demo-caller-key-not-secret';

interface Launch {
  command: string;
  args: string[];
  env: Record<string, string>;
}
interface DemoPlan {
  watch: boolean;
  sandboxPort: string;
  servicePort: string;
  configPath: string;
  sandbox: Launch;
  service: Launch;
}
// A plain-JS script (no build step): loaded as it is run.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { demoPlan } = require(SCRIPT) as {
  demoPlan(env: NodeJS.ProcessEnv, argv: string[], workDir: () => string): DemoPlan;
};

describe('the demo plan', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'demo-plan-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses config/demo.yaml as it is on the default sandbox port', () => {
    const plan = demoPlan({}, [], () => dir);
    expect(plan.configPath).toBe(join(ROOT, 'config', 'demo.yaml'));
    expect(plan.sandbox.env).toEqual({ SANDBOX_PORT: '4000', SANDBOX_HOST: '127.0.0.1' });
    expect(plan.service.env.PORT).toBe('3000');
    // Loopback only: the demo's admin caller key is published in the README.
    expect(plan.service.env.HOST).toBe('127.0.0.1');
    expect(demoPlan({ HOST: '0.0.0.0' }, [], () => dir).service.env.HOST).toBe('0.0.0.0');
  });

  it('moves the sandbox and the configuration to SANDBOX_PORT', () => {
    const plan = demoPlan({ SANDBOX_PORT: '4123', PORT: '3123' }, [], () => dir);
    expect(plan.sandbox.env.SANDBOX_PORT).toBe('4123');
    expect(plan.service.env).toEqual({
      PORT: '3123',
      HOST: '127.0.0.1',
      TOKEN_VENDOR_CONFIG: plan.configPath,
    });
    expect(plan.configPath.startsWith(dir)).toBe(true);
    const config = parseServiceConfig(readFileSync(plan.configPath, 'utf8'), plan.configPath, dir);
    expect([...config.environments.values()].map((e) => e.tokenUrl)).toEqual([
      'http://127.0.0.1:4123/connect/token',
      'http://127.0.0.1:4123/connect/token',
    ]);
    // The secret files stay the demo's own (config/ is no longer beside the file).
    for (const client of config.clients) {
      expect(client.secretSource.kind).toBe('file');
      if (client.secretSource.kind === 'file')
        expect(existsSync(client.secretSource.path)).toBe(true);
    }
  });

  it('leaves a TOKEN_VENDOR_CONFIG of the user alone', () => {
    const plan = demoPlan(
      { SANDBOX_PORT: '4123', TOKEN_VENDOR_CONFIG: '/mine.yaml' },
      [],
      () => dir,
    );
    expect(plan.configPath).toBe('/mine.yaml');
  });

  it('runs the built service, or the Nest watcher with --watch (start:dev)', () => {
    expect(demoPlan({}, [], () => dir).service.args).toEqual([
      join(ROOT, 'dist/apps/token-vendor/main.js'),
    ]);
    const watch = demoPlan({}, ['--watch'], () => dir);
    expect(watch.watch).toBe(true);
    expect(watch.service.args).toEqual([
      require.resolve('@nestjs/cli/bin/nest.js'),
      'start',
      'token-vendor',
      '--watch',
    ]);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.scripts['start:dev']).toMatch(/node scripts\/start-demo\.js --watch$/);
    expect(pkg.scripts['test:e2e']).toBe('jest --selectProjects e2e');
  });

  it.each([
    [{ SANDBOX_PORT: 'abc' }, 'SANDBOX_PORT must be a port number (1-65535), got "abc"'],
    [{ PORT: '70000' }, 'PORT must be a port number (1-65535), got "70000"'],
  ])('refuses %j', (env, message) => {
    expect(() => demoPlan(env, [], () => dir)).toThrow(message);
  });
});

describe('npm start on other ports', () => {
  let demo: ChildProcess | undefined;
  let output = '';

  afterEach(async () => {
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once('exit', r));
      demo.kill('SIGTERM');
      await exited;
    }
  });

  it('serves a token from the sandbox on SANDBOX_PORT, then stops both on SIGTERM', async () => {
    const [sandboxPort, port] = [await freePort(), await freePort()];
    demo = spawn(process.execPath, [SCRIPT], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, SANDBOX_PORT: String(sandboxPort), PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demo.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!output.includes('token-vendor is ready') && Date.now() < deadline) {
      if (demo.exitCode !== null) throw new Error(`the demo exited: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(output).toContain(`the sandbox IdP is on :${sandboxPort}`);

    const res = await httpRequest(`http://127.0.0.1:${port}/tokens/demo.client?environment=uat`, {
      headers: { authorization: `Bearer ${DEMO_CALLER_KEY}` },
    });
    expect(res.status).toBe(200);
    expect(res.json().token_type).toBe('Bearer');
    // The sandbox on SANDBOX_PORT issued it: one request for uat/demo.client (scope
    // deals-read), whether start-up warming or this call made it.
    const requests = (await httpRequest(`http://127.0.0.1:${sandboxPort}/_sandbox/requests`))
      .json()
      .filter(
        (r: { clientId?: string; scope?: string }) =>
          r.clientId === 'demo.client' && r.scope === 'deals-read',
      );
    expect(requests.map((r: { status?: number }) => r.status)).toEqual([200]);

    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    demo.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Both children went with it: nothing answers on either port.
    await expect(httpRequest(`http://127.0.0.1:${port}/health/live`)).rejects.toThrow();
    await expect(httpRequest(`http://127.0.0.1:${sandboxPort}/health`)).rejects.toThrow();
  }, 90_000);
});
