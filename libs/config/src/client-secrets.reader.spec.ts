import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readClientSecret, readClientSecrets } from './client-secrets.reader';
import { ConfigError } from './config.error';
import type { ClientConfig, SecretSource } from './config.types';

const SECRET = 'S3cr3t-value+with/odd=chars';

function client(secretSource: SecretSource, clientId = 'api-fake-test.client'): ClientConfig {
  return {
    key: `uat/${clientId}`,
    clientId,
    environment: 'uat',
    secretSource,
    authMethod: 'client_secret_post',
  };
}

describe('client secrets reader', () => {
  let dir: string;
  const file = (name: string, content: string | Buffer): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'client-secrets-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('readClientSecret', () => {
    it.each([
      ['as written', SECRET],
      ['with the trailing newline kubectl leaves', `${SECRET}\n`],
      ['with CRLF', `${SECRET}\r\n`],
      ['with surrounding blanks', `  ${SECRET}\t\n`],
    ])('reads a secret file %s', (_name, content) => {
      const path = file('secret', content);

      expect(readClientSecret(client({ kind: 'file', path }), {})).toBe(SECRET);
    });

    it('accepts a file of exactly 4096 bytes', () => {
      const path = file('big', 'x'.repeat(4096));

      expect(readClientSecret(client({ kind: 'file', path }), {})).toBe('x'.repeat(4096));
    });

    it.each([
      ['set', { CAS_SECRET: SECRET }],
      ['set with a trailing newline', { CAS_SECRET: `${SECRET}\n` }],
    ])('reads an environment variable %s', (_name, env) => {
      expect(readClientSecret(client({ kind: 'env', name: 'CAS_SECRET' }), env)).toBe(SECRET);
    });

    it.each<[string, () => SecretSource, NodeJS.ProcessEnv, (src: SecretSource) => object]>([
      [
        'a missing file',
        () => ({ kind: 'file', path: join(dir, 'absent') }),
        {},
        (src) => ({ field: 'secretFile', problem: `cannot read ${placeOf(src)} (ENOENT)` }),
      ],
      [
        'a directory',
        () => ({ kind: 'file', path: dir }),
        {},
        (src) => ({ field: 'secretFile', problem: `cannot read ${placeOf(src)} (EISDIR)` }),
      ],
      [
        'an empty file',
        () => ({ kind: 'file', path: file('empty', '') }),
        {},
        (src) => ({ field: 'secretFile', problem: `the secret in ${placeOf(src)} is empty` }),
      ],
      [
        'a file of blanks',
        () => ({ kind: 'file', path: file('blank', ' \n\n') }),
        {},
        (src) => ({ field: 'secretFile', problem: `the secret in ${placeOf(src)} is empty` }),
      ],
      [
        'an oversized file',
        () => ({ kind: 'file', path: file('huge', `${SECRET}${'x'.repeat(4097)}`) }),
        {},
        (src) => ({ field: 'secretFile', problem: `${placeOf(src)} is larger than 4096 bytes` }),
      ],
      [
        'an unset variable',
        () => ({ kind: 'env', name: 'CAS_SECRET' }),
        { OTHER: SECRET },
        () => ({ field: 'secretEnv', problem: 'environment variable CAS_SECRET is not set' }),
      ],
      [
        'an empty variable',
        () => ({ kind: 'env', name: 'CAS_SECRET' }),
        { CAS_SECRET: '' },
        () => ({ field: 'secretEnv', problem: 'the secret in CAS_SECRET is empty' }),
      ],
      [
        'a blank variable',
        () => ({ kind: 'env', name: 'CAS_SECRET' }),
        { CAS_SECRET: ' \n' },
        () => ({ field: 'secretEnv', problem: 'the secret in CAS_SECRET is empty' }),
      ],
    ])('names the field and the place for %s', (_name, source, env, expected) => {
      const src = source();

      const result = readClientSecret(client(src), env);

      expect(result).toEqual(expected(src));
      expect(JSON.stringify(result)).not.toContain(SECRET);
    });
  });

  describe('readClientSecrets', () => {
    it('returns every secret by client key', () => {
      const path = file('a', `${SECRET}-a\n`);

      const sut = readClientSecrets(
        [
          client({ kind: 'file', path }, 'a.client'),
          client({ kind: 'env', name: 'SECRET_B' }, 'b.client'),
        ],
        { SECRET_B: `${SECRET}-b` },
        'config.yaml',
      );

      expect([...sut]).toEqual([
        ['uat/a.client', `${SECRET}-a`],
        ['uat/b.client', `${SECRET}-b`],
      ]);
    });

    it('lists every unreadable secret in one ConfigError, without any value', () => {
      const good = file('good', SECRET);
      const huge = file('huge', `${SECRET}${'y'.repeat(5000)}`);
      const missing = join(dir, 'missing');

      let err: unknown;
      try {
        readClientSecrets(
          [
            client({ kind: 'file', path: good }, 'good.client'),
            client({ kind: 'file', path: missing }, 'missing.client'),
            client({ kind: 'env', name: 'UNSET_SECRET' }, 'unset.client'),
            client({ kind: 'file', path: huge }, 'huge.client'),
            client({ kind: 'env', name: 'EMPTY_SECRET' }, 'empty.client'),
          ],
          { EMPTY_SECRET: '', SOMETHING_ELSE: SECRET },
          'config.yaml',
        );
      } catch (e) {
        err = e;
      }

      expect(err).toBeInstanceOf(ConfigError);
      const { problems, source, message } = err as ConfigError;
      expect(source).toBe('config.yaml');
      expect(problems).toEqual([
        `clients[1].secretFile: cannot read ${missing} (ENOENT)`,
        'clients[2].secretEnv: environment variable UNSET_SECRET is not set',
        `clients[3].secretFile: ${huge} is larger than 4096 bytes`,
        'clients[4].secretEnv: the secret in EMPTY_SECRET is empty',
      ]);
      expect(message).not.toContain(SECRET);
    });
  });
});

function placeOf(src: SecretSource): string {
  return src.kind === 'file' ? src.path : src.kind === 'env' ? src.name : src.certPath;
}

describe('readClientSecret on a wrong mount', () => {
  it('reads a device that never ends only up to the limit, and refuses it', () => {
    expect(readClientSecret(client({ kind: 'file', path: '/dev/zero' }), {})).toEqual({
      field: 'secretFile',
      problem: '/dev/zero is larger than 4096 bytes',
    });
  });
});
