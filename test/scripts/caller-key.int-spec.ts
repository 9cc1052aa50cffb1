/**
 * `npm run caller-key`: help, caller name validation, and every form it prints accepted by
 * the service's loader and by the chart.
 */
import { parseServiceConfig } from '@app/config';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { render, serviceConfigMap } from '../deploy/helm';

const SCRIPT = join(__dirname, '..', '..', 'scripts', 'caller-key.js');

function callerKey(...args: string[]) {
  const res = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
  return { code: res.status, out: res.stdout, err: res.stderr };
}

/** The indented blocks of the output (key, inline YAML, chart values, kubectl line). */
function blocks(out: string): string[] {
  return out
    .split(/\n(?:(?! {2})[^\n]*\n)+/)
    .map((b) => b.split('\n').filter((l) => l.startsWith('  ')))
    .filter((lines) => lines.length > 0)
    .map((lines) => lines.map((l) => l.slice(2)).join('\n'));
}

describe('npm run caller-key', () => {
  it('prints its usage for --help and -h, minting nothing', () => {
    for (const flag of ['--help', '-h']) {
      const res = callerKey(flag);
      expect(res.code).toBe(0);
      expect(res.out).toMatch(/^Usage: npm run caller-key -- <caller-name>\n/);
      expect(res.out).not.toContain('tvk_');
    }
  });

  it.each([
    ['a name with a space', ['payments service'], 'invalid caller name "payments service"'],
    ['a name starting with "-"', ['-x'], 'unexpected -x'],
    ['a name starting with "."', ['.hidden'], 'invalid caller name ".hidden"'],
    ['a name of 65 characters', ['a'.repeat(65)], 'invalid caller name'],
    ['a name with "/"', ['team/payments'], 'invalid caller name "team/payments"'],
    ['two names', ['a', 'b'], 'unexpected b'],
  ])('refuses %s with exit 2 and mints nothing', (_name, args, message) => {
    const res = callerKey(...args);
    expect(res.code).toBe(2);
    expect(res.err).toContain(`caller-key: ${message}`);
    expect(res.out).toBe('');
  });

  describe('for a valid name', () => {
    const res = callerKey('payments-service');
    const [keyBlock, inline, chartValues, kubectl] = blocks(res.out);
    const key = keyBlock.trim();
    const digest = createHash('sha256').update(key).digest('hex');

    it('prints a fresh 256-bit key once, and its SHA-256', () => {
      expect(res.code).toBe(0);
      expect(key).toMatch(/^tvk_[A-Za-z0-9_-]{43}$/);
      expect(res.out.split(key)).toHaveLength(2);
      expect(res.out).toContain(`SHA-256, which is all the configuration holds: ${digest}`);
      expect(callerKey('payments-service').out).not.toContain(key);
    });

    it('prints an inline form the service accepts', () => {
      const config = parseServiceConfig(
        `environments: { uat: { tokenUrl: "https://idp.example/token" } }\n${inline}`,
        'caller-key output',
        '/',
      );
      expect(config.callers).toHaveLength(1);
      expect(config.callers[0].name).toBe('payments-service');
      expect(config.callers[0].keyDigests.map((d) => d.toString('hex'))).toEqual([digest]);
    });

    it('prints chart values that mount the digest file the caller names', () => {
      const dir = mkdtempSync(join(tmpdir(), 'caller-key-'));
      try {
        const file = join(dir, 'values.yaml');
        writeFileSync(file, chartValues);
        const objects = render({ files: [file] });
        const secret = objects.find((o) => o.metadata.name.endsWith('caller-digests'))!;
        expect(Buffer.from(secret.data['payments-service'], 'base64').toString()).toBe(
          `${digest}\n`,
        );
        const config = parse(serviceConfigMap(objects).data['config.yaml']);
        expect(config.callers).toEqual([
          {
            name: 'payments-service',
            keySha256File: '/var/run/secrets/token-vendor/callers/payments-service',
            clients: [],
          },
        ]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('prints the kubectl line for a Secret managed elsewhere', () => {
      expect(kubectl).toBe(
        `kubectl create secret generic token-vendor-caller-digests --from-literal=payments-service=${digest}`,
      );
    });
  });
});
