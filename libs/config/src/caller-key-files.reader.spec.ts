import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  MAX_KEY_DIGEST_FILE_BYTES,
  callersWithoutCredentials,
  readCallerKeyFiles,
  readKeyDigestFile,
} from './caller-key-files.reader';
import { ConfigError } from './config.error';
import { loadServiceConfigFile, parseServiceConfig } from './service-config.loader';

const DIGEST_A = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const DIGEST_B = '60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752';
const DIGEST_C = 'fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13';
const KEY_CANARY = 'caller-key-canary-do-not-print';

type RawCaller = Record<string, unknown>;

function configText(callers: RawCaller[]): string {
  return stringify({
    environments: { uat: { tokenUrl: 'https://identity.example/connect/token' } },
    clients: [{ clientId: 'a.client', environment: 'uat', secretEnv: 'A_SECRET' }],
    callers,
  });
}

describe('parseServiceConfig with keySha256File (reads no file)', () => {
  it('keeps the inline digests and the resolved path of the file', () => {
    const sut = parseServiceConfig(
      configText([
        { name: 'deals', keySha256: [DIGEST_A], keySha256File: 'callers/deals', clients: [] },
        { name: 'ops', keySha256File: '/var/run/secrets/token-vendor/callers/ops' },
      ]),
      'test.yaml',
      '/etc/token-vendor',
    );

    expect(sut.callers).toEqual([
      {
        name: 'deals',
        keyDigests: [Buffer.from(DIGEST_A, 'hex')],
        inlineKeyDigests: [Buffer.from(DIGEST_A, 'hex')],
        keyDigestFile: '/etc/token-vendor/callers/deals',
        clients: [],
        admin: false,
      },
      {
        name: 'ops',
        keyDigests: [],
        inlineKeyDigests: [],
        keyDigestFile: '/var/run/secrets/token-vendor/callers/ops',
        clients: [],
        admin: false,
      },
    ]);
  });

  it('requires keySha256 or keySha256File', () => {
    expect(() => parseServiceConfig(configText([{ name: 'deals' }]), 'test.yaml')).toThrow(
      new ConfigError('test.yaml', [
        'callers[0].keySha256: a caller needs a way to authenticate (keySha256, keySha256File, kubernetes or jwt)',
      ]),
    );
  });

  it('refuses an empty keySha256File', () => {
    expect(() =>
      parseServiceConfig(configText([{ name: 'deals', keySha256File: '' }]), 'test.yaml'),
    ).toThrow(
      new ConfigError('test.yaml', [
        'callers[0].keySha256File: Too small: expected string to have >=1 characters',
      ]),
    );
  });
});

describe('loadServiceConfigFile with keySha256File', () => {
  let dir: string;
  let configPath: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'caller-key-files-'));
    mkdirSync(join(dir, 'callers'));
    configPath = join(dir, 'token-vendor.yaml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (callers: RawCaller[]) => {
    writeFileSync(configPath, configText(callers));
    return loadServiceConfigFile(configPath);
  };
  const problemsOf = (callers: RawCaller[]): readonly string[] => {
    try {
      load(callers);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      expect(e.source).toBe(configPath);
      expect(e.message).not.toContain(KEY_CANARY);
      return e.problems;
    }
    throw new Error('expected a ConfigError');
  };
  const digestFile = (name: string, content: string): void =>
    writeFileSync(join(dir, 'callers', name), content);

  it('adds the digests of the file (relative to the config folder) after the inline ones', () => {
    digestFile(
      'deals',
      `# deals-service keys\n${DIGEST_B.toUpperCase()}\n\n  ${DIGEST_C}  # new key, 2026-11\r\n`,
    );

    const sut = load([
      { name: 'deals', keySha256: DIGEST_A, keySha256File: 'callers/deals', clients: ['*'] },
    ]);

    expect(sut.callers).toEqual([
      {
        name: 'deals',
        keyDigests: [DIGEST_A, DIGEST_B, DIGEST_C].map((hex) => Buffer.from(hex, 'hex')),
        inlineKeyDigests: [Buffer.from(DIGEST_A, 'hex')],
        keyDigestFile: join(dir, 'callers', 'deals'),
        clients: [{ kind: 'any' }],
        admin: false,
      },
    ]);
  });

  it('accepts a file alone, with an absolute path', () => {
    digestFile('ops', `${DIGEST_A}\n`);

    const sut = load([{ name: 'ops', keySha256File: join(dir, 'callers', 'ops'), admin: true }]);

    expect(sut.callers[0].keyDigests).toEqual([Buffer.from(DIGEST_A, 'hex')]);
  });

  it('takes a missing file as no keys: the caller is kept, with no digest from it', () => {
    const sut = load([
      { name: 'deals', keySha256: DIGEST_A },
      { name: 'ops', keySha256File: 'callers/missing' },
      { name: 'audit', keySha256: DIGEST_B, keySha256File: 'callers/missing-too' },
    ]);

    expect(sut.callers.map((c) => c.keyDigests.map((d) => d.toString('hex')))).toEqual([
      [DIGEST_A],
      [],
      [DIGEST_B],
    ]);
    expect(callersWithoutCredentials(sut)).toEqual(['ops']);
  });

  it('names the field and the file it cannot read for another reason than absence', () => {
    mkdirSync(join(dir, 'callers', 'a-folder'));

    expect(problemsOf([{ name: 'ops', keySha256File: 'callers/a-folder' }])).toEqual([
      `callers[0].keySha256File: cannot read ${join(dir, 'callers/a-folder')} (EISDIR)`,
    ]);
  });

  it('names bad lines by number only, never their content', () => {
    digestFile('ops', `${DIGEST_A}\n${KEY_CANARY}\n# fine\n${DIGEST_B.slice(1)}\n`);

    expect(
      problemsOf([
        { name: 'deals', keySha256: DIGEST_C },
        { name: 'ops', keySha256File: 'callers/ops' },
      ]),
    ).toEqual([
      'callers[1].keySha256File: line 2 is not a SHA-256 digest',
      'callers[1].keySha256File: line 4 is not a SHA-256 digest',
    ]);
  });

  it('counts bad lines past the fifth instead of naming them', () => {
    digestFile('ops', Array.from({ length: 8 }, () => KEY_CANARY).join('\n'));

    expect(problemsOf([{ name: 'ops', keySha256File: 'callers/ops' }])).toEqual([
      'callers[0].keySha256File: line 1 is not a SHA-256 digest',
      'callers[0].keySha256File: line 2 is not a SHA-256 digest',
      'callers[0].keySha256File: line 3 is not a SHA-256 digest',
      'callers[0].keySha256File: line 4 is not a SHA-256 digest',
      'callers[0].keySha256File: line 5 is not a SHA-256 digest',
      'callers[0].keySha256File: 3 more lines are not SHA-256 digests',
    ]);
  });

  it('takes an empty file (or one of comments) as no keys, not as an error', () => {
    digestFile('ops', '# nobody yet\n\n');
    digestFile('empty', '');

    const sut = load([
      { name: 'ops', keySha256File: 'callers/ops' },
      { name: 'empty', keySha256File: 'callers/empty' },
      { name: 'both', keySha256: DIGEST_A, keySha256File: 'callers/empty' },
    ]);

    expect(sut.callers.map((c) => c.keyDigests.length)).toEqual([0, 0, 1]);
    expect(callersWithoutCredentials(sut)).toEqual(['ops', 'empty']);
  });

  it('re-reads a file from the inline digests, so a removed digest is gone', () => {
    digestFile('ops', `${DIGEST_B}\n${DIGEST_C}\n`);
    const first = load([{ name: 'ops', keySha256: DIGEST_A, keySha256File: 'callers/ops' }]);
    expect(first.callers[0].keyDigests).toHaveLength(3);

    digestFile('ops', `${DIGEST_C}\n`);
    const sut = readCallerKeyFiles(first, configPath);

    expect(sut.callers[0].keyDigests.map((d) => d.toString('hex'))).toEqual([DIGEST_A, DIGEST_C]);
    expect(sut.callers[0].inlineKeyDigests).toEqual(first.callers[0].inlineKeyDigests);
  });

  it('gives a key to one caller only, across inline digests and files', () => {
    digestFile('deals', `${DIGEST_A}\n${DIGEST_B}\n`);
    digestFile('ops', `${DIGEST_C}\n${DIGEST_B.toUpperCase()}\n${DIGEST_C}\n`);

    expect(
      problemsOf([
        { name: 'deals', keySha256File: 'callers/deals' },
        { name: 'ops', keySha256File: 'callers/ops' },
        { name: 'audit', keySha256: DIGEST_A },
      ]),
    ).toEqual([
      'callers[0].keySha256File: line 1: the same key is already given to audit',
      'callers[1].keySha256File: line 2: the same key is already given to deals',
      'callers[1].keySha256File: line 3: the same key is already given to ops',
    ]);
  });

  it('refuses a file larger than the limit without reading it all', () => {
    digestFile('ops', `${DIGEST_A}\n`.repeat(MAX_KEY_DIGEST_FILE_BYTES / 65 + 1));

    expect(problemsOf([{ name: 'ops', keySha256File: 'callers/ops' }])).toEqual([
      `callers[0].keySha256File: ${join(dir, 'callers/ops')} is larger than ${MAX_KEY_DIGEST_FILE_BYTES} bytes`,
    ]);
  });

  it('does not read digest files when the configuration itself is invalid', () => {
    writeFileSync(
      configPath,
      configText([{ name: 'ops', keySha256File: 'callers/missing' }]) + 'bogus: 1\n',
    );

    expect(() => loadServiceConfigFile(configPath)).toThrow(
      new ConfigError(configPath, ['(top level): unknown field(s) bogus']),
    );
  });
});

describe('readKeyDigestFile', () => {
  it('names no content for a file that holds a key instead of its digest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'caller-key-file-'));
    try {
      writeFileSync(join(dir, 'k'), `${KEY_CANARY}\n`);
      const sut = readKeyDigestFile(join(dir, 'k'));
      expect(sut).toEqual({ digests: [], problems: ['line 1 is not a SHA-256 digest'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
