/**
 * The chart's `helm test` hook: the Pod it renders, and the very script that Pod runs,
 * taken from the rendered manifest and run against the real service and sandbox IdP.
 */
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_ON, K8sObject, Loose, ofKind, one, render } from './helm';
import { httpRequest, type InProcessService, startService } from '../support';

const SCRIPT_FILE = join(__dirname, '..', '..', 'helm', 'token-vendor', 'files', 'helm-test.js');
const KEY = 'helm-test-caller-key-not-secret';
const CLIENT = { clientId: 'deals.client', environment: 'uat', secret: 'helm-test-fake-secret' };

const testPod = (objects: K8sObject[]) => one(objects, 'Pod');
const env = (pod: K8sObject) =>
  Object.fromEntries(
    pod.spec.containers[0].env.map((e: Loose) => [e.name, e.value ?? e.valueFrom]),
  ) as Record<string, Loose>;

describe('the helm test Pod', () => {
  const objects = render({ files: [ALL_ON] });
  const pod = testPod(objects);

  it('is a test hook, deleted when it passes, that never restarts', () => {
    expect(pod.metadata.annotations).toEqual({
      'helm.sh/hook': 'test',
      'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
    });
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.automountServiceAccountToken).toBe(false);
  });

  it("runs the chart's script with node on the service's own image, locked down like it", () => {
    const app = one(objects, 'Deployment').spec.template.spec;
    const [container] = pod.spec.containers;
    expect(container.image).toBe(app.containers[0].image);
    expect(container.command).toEqual(['node', '-e', readFileSync(SCRIPT_FILE, 'utf8')]);
    expect(container.securityContext).toEqual(app.containers[0].securityContext);
    expect(pod.spec.securityContext).toEqual(app.securityContext);
  });

  it('calls the Service, with the client and the caller key from a Secret', () => {
    const service = one(objects, 'Service');
    expect(env(pod)).toEqual({
      TOKEN_VENDOR_URL: `http://${service.metadata.name}.tokens.svc:80`,
      TEST_TIMEOUT_SECONDS: '60',
      TEST_CLIENT_ID: 'api-fake-test.client',
      TEST_ENVIRONMENT: 'uat',
      TEST_CALLER_KEY: { secretKeyRef: { name: 'token-vendor-test-caller', key: 'caller-key' } },
    });
  });

  it('only checks readiness with no client or caller key given', () => {
    expect(Object.keys(env(testPod(render())))).toEqual([
      'TOKEN_VENDOR_URL',
      'TEST_TIMEOUT_SECONDS',
    ]);
  });

  it('is not rendered with tests.enabled=false', () => {
    expect(ofKind(render({ set: { 'tests.enabled': false } }), 'Pod')).toEqual([]);
  });
});

interface ScriptRun {
  code: number | null;
  out: string;
}

/** Runs the script exactly as the rendered Pod does (`node -e <script>`), with env. */
function runTestPodScript(vars: Record<string, string>): Promise<ScriptRun> {
  const [command, ...args] = testPod(render()).spec.containers[0].command as string[];
  expect(command).toBe('node');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { env: { PATH: process.env.PATH, ...vars }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, out: stdout + stderr });
      },
    );
  });
}

describe('the helm test script against the service', () => {
  let idp: RunningSandbox;
  let app: InProcessService;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [{ clientId: CLIENT.clientId, secret: CLIENT.secret }],
    });
    app = await startService({
      scheduler: false,
      logLevel: 'warn',
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 5000 } },
      clients: [CLIENT],
      callers: [{ name: 'helm-test', keys: [KEY], clients: [CLIENT.clientId] }],
    });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await idp?.close();
  });

  beforeEach(() => idp.resetStats());

  it('passes after one token through the service, printing neither key nor token', async () => {
    const run = await runTestPodScript({
      TOKEN_VENDOR_URL: app.url,
      TEST_CLIENT_ID: CLIENT.clientId,
      TEST_ENVIRONMENT: 'uat',
      TEST_CALLER_KEY: KEY,
    });
    expect(run).toEqual({ code: 0, out: expect.stringContaining(`OK: ${app.url}/health/ready`) });
    expect(run.out).toMatch(
      /OK: a token for deals\.client\?environment=uat, Bearer, expires in \d+ s/,
    );
    expect(idp.stats().tokenRequests).toBe(1);
    const again = await httpRequest(`${app.url}/tokens/deals.client`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    const token = again.json().access_token as string;
    expect(token.length).toBeGreaterThan(10);
    expect(run.out).not.toContain(token);
    expect(run.out).not.toContain(KEY);
  });

  it('fails with the status when the service refuses the caller key', async () => {
    const run = await runTestPodScript({
      TOKEN_VENDOR_URL: app.url,
      TEST_CLIENT_ID: CLIENT.clientId,
      TEST_CALLER_KEY: 'not-a-known-key',
    });
    expect(run.code).toBe(1);
    expect(run.out).toContain('FAIL: GET /tokens/deals.client: HTTP 401');
    expect(idp.stats().tokenRequests).toBe(0);
  });

  it('checks readiness only when no client is given', async () => {
    const run = await runTestPodScript({ TOKEN_VENDOR_URL: app.url });
    expect(run.code).toBe(0);
    expect(run.out).toContain('token check skipped');
    expect(idp.stats().tokenRequests).toBe(0);
  });

  it('fails when the service never becomes ready', async () => {
    const run = await runTestPodScript({
      // Port 9 on loopback: nothing listens (connection refused).
      TOKEN_VENDOR_URL: 'http://127.0.0.1:9',
      TEST_TIMEOUT_SECONDS: '1',
    });
    expect(run.code).toBe(1);
    expect(run.out).toContain('FAIL: http://127.0.0.1:9/health/ready did not answer 200 in time');
  });
});
