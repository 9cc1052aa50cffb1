/**
 * What the deployment files hand the service is checked with the service's own
 * loaders (@app/config), so the chart and compose cannot drift from the format.
 */
import { parseEncryptionKeys, parseServiceConfig, readCallerKeyFiles } from '@app/config';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ALL_ON, render, serviceConfigMap, ValuesOptions } from './helm';

const ROOT = join(__dirname, '..', '..');

function encryptionKeys(value: string) {
  const problems: string[] = [];
  const keys = parseEncryptionKeys(value, problems);
  expect(problems).toEqual([]);
  return keys;
}

describe.each([
  ['default values', {}, 0],
  ['all-on values', { files: [ALL_ON] }, 7],
])('the chart with %s', (_name, values: ValuesOptions, clientCount) => {
  const objects = render(values);

  it('renders a configuration file the service accepts', () => {
    const text = serviceConfigMap(objects).data['config.yaml'];
    const config = parseServiceConfig(text, 'configmap', '/');
    expect(config.clients).toHaveLength(clientCount);
    for (const client of config.clients) {
      if (client.secretSource.kind === 'file') {
        expect(client.secretSource.path).toMatch(/^\/var\/run\/secrets\/token-vendor\/clients\//);
      }
    }
  });
});

it('the chart-created encryption key Secret holds keys the service accepts', () => {
  const secret = render({ files: [ALL_ON] }).find((o) =>
    o.metadata.name.endsWith('encryption-keys'),
  )!;
  const value = Buffer.from(secret.data.TOKEN_VENDOR_ENCRYPTION_KEYS, 'base64').toString();
  expect(encryptionKeys(value).map((k) => k.kid)).toEqual(['ci']);
});

it('the chart-created caller digests Secret holds files the service accepts', () => {
  const objects = render({ files: [ALL_ON] });
  const secret = objects.find((o) => o.metadata.name.endsWith('caller-digests'))!;
  const mountPath = '/var/run/secrets/token-vendor/callers/';
  const config = parseServiceConfig(
    serviceConfigMap(objects).data['config.yaml'],
    'configmap',
    '/',
  );
  // The mounted folder, reproduced in a temporary one.
  const dir = mkdtempSync(join(tmpdir(), 'chart-caller-digests-'));
  try {
    for (const [key, value] of Object.entries(secret.data as Record<string, string>)) {
      writeFileSync(join(dir, key), Buffer.from(value, 'base64'));
    }
    const withFiles = {
      ...config,
      callers: config.callers.map((c) =>
        c.keyDigestFile?.startsWith(mountPath)
          ? { ...c, keyDigestFile: join(dir, c.keyDigestFile.slice(mountPath.length)) }
          : c,
      ),
    };
    const payments = readCallerKeyFiles(withFiles, 'chart').callers.find(
      (c) => c.name === 'payments-service',
    )!;
    expect(payments.keyDigests).toHaveLength(2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('docker-compose', () => {
  const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'));
  const env = compose.services['token-vendor'].environment;

  it('mounts a configuration file the service accepts', () => {
    const path = join(ROOT, 'deploy', 'compose', 'config.yaml');
    const config = parseServiceConfig(readFileSync(path, 'utf8'), path, '/');
    expect(config.clients.map((c) => c.key)).toEqual(['uat/demo.client', 'uat/demo-basic.client']);
    expect(config.callers.map((c) => c.name)).toEqual(['demo-caller']);
  });

  it('gives the service an encryption key it accepts', () => {
    expect(encryptionKeys(env.TOKEN_VENDOR_ENCRYPTION_KEYS).map((k) => k.kid)).toEqual(['demo']);
  });
});
