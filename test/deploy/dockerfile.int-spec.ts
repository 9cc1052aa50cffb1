/**
 * The Dockerfile cannot be built here (no Docker engine), so it is read:
 * instructions are parsed into stages and checked for what the image promises.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name?: string;
  body: Instruction[];
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  return text
    .replace(/\\\n(\s*#.*\n)*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const [, op, args] = /^(\S+)\s*(.*)$/.exec(line)!;
      return { op: op.toUpperCase(), args };
    });
}

/** `$X`, `${X}`, `${X:-default}` and `${X:+word}` expanded from args, as BuildKit does. */
function expand(text: string, args: Map<string, string>): string {
  return text.replace(
    /\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)/g,
    (_m, braced: string, op: string, word: string, bare: string) => {
      const value = args.get(braced ?? bare) ?? '';
      if (op === '-') return value || word;
      if (op === '+') return value ? word : '';
      return value;
    },
  );
}

/**
 * Stages, with FROM images resolved through the global ARG defaults (overridden by
 * `buildArgs`, as `--build-arg` does); a stage built FROM another has that one's image.
 */
function stages(text: string, buildArgs: Record<string, string> = {}): Stage[] {
  const globalArgs = new Map<string, string>();
  const result: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      const resolved = expand(image, globalArgs);
      const parent = result.find((s) => s.name === resolved);
      result.push({
        image: parent ? parent.image : resolved,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        body: [],
      });
    } else if (result.length === 0 && ins.op === 'ARG') {
      const [key, value = ''] = ins.args.split(/=(.*)/s);
      globalArgs.set(key, buildArgs[key] ?? expand(value, globalArgs));
    } else if (result.length > 0) {
      result[result.length - 1].body.push(ins);
    }
  }
  return result;
}

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const NODE_VERSION = readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim();
const all = stages(DOCKERFILE);
const runtime = all[all.length - 1];
const args = (stage: Stage, op: string) => stage.body.filter((i) => i.op === op).map((i) => i.args);
const stageNamed = (name: string) => all.find((s) => s.name === name)!;
const sandbox = stageNamed('identity-sandbox');

/** The stage `from` that `COPY --from=<from> /src<src> .<src>` in `stage` copies `src` from. */
function copiedFrom(src: string, from: string, stage: Stage = runtime): Stage {
  const copy = args(stage, 'COPY').find((a) => a.split(/\s+/).some((w) => w.endsWith(src)));
  expect(copy).toBe(`--from=${from} /src${src} .${src}`);
  return stageNamed(from);
}

/** Every instruction of a stage and of the stages it is built FROM, base first. */
function withBases(stage: Stage): Instruction[] {
  const text = DOCKERFILE;
  const fromLine = new RegExp(`^FROM\\s+(\\S+)\\s+AS\\s+${stage.name}\\s*$`, 'mi').exec(text);
  const parent = fromLine ? all.find((s) => s.name === fromLine[1]) : undefined;
  return [...(parent ? withBases(parent) : []), ...stage.body];
}

/** LABEL key="value" pairs of a stage. */
function labels(stage: Stage): Record<string, string> {
  const pairs = args(stage, 'LABEL')
    .join(' ')
    .matchAll(/([\w.-]+)="([^"]*)"/g);
  return Object.fromEntries([...pairs].map(([, k, v]) => [k, v]));
}

describe('Dockerfile', () => {
  it('is multi-stage, every stage on the Node release the suite runs on (.nvmrc)', () => {
    expect(NODE_VERSION).toMatch(/^24\.\d+\.\d+$/);
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const stage of all) expect(stage.image).toBe(`node:${NODE_VERSION}-bookworm-slim`);
  });

  it('pins the base by digest when NODE_DIGEST is given, and records no made-up one', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    for (const stage of stages(DOCKERFILE, { NODE_DIGEST: digest })) {
      expect(stage.image).toBe(`node:${NODE_VERSION}-bookworm-slim@${digest}`);
    }
    const declared = /^ARG NODE_DIGEST=(.*)$/m.exec(DOCKERFILE)?.[1];
    expect(declared === '' || /^sha256:[0-9a-f]{64}$/.test(declared!)).toBe(true);
  });

  it('stops the build when the base holds another Node than NODE_VERSION', () => {
    const build = copiedFrom('/dist/apps/token-vendor', 'build');
    const check = args(build, 'RUN').find((r) => r.includes('process.versions.node'));
    expect(check).toContain('"${NODE_VERSION}"');
    expect(check).toContain('process.exit(1)');
  });

  it('builds dist/ in a stage with the full dependency tree', () => {
    const build = copiedFrom('/dist/apps/token-vendor', 'build');
    const runs = args(build, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci(?![^\n]*--omit)/);
    expect(runs).toContain('npm run build');
  });

  it('ships production dependencies only, and no npm, npx or corepack', () => {
    const deps = copiedFrom('/node_modules', 'deps');
    expect(args(deps, 'RUN').join('\n')).toMatch(/npm (ci|prune)\b[^\n]*--omit=dev/);
    const runs = withBases(runtime)
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
    // Nothing in the runtime (or the stage it is built on) installs; npm is removed.
    expect(runs).not.toMatch(/\bnpm (ci|install|i|run|prune)\b/);
    for (const path of [
      '/usr/local/lib/node_modules/npm',
      '/usr/local/lib/node_modules/corepack',
      '/usr/local/bin/npm',
      '/usr/local/bin/npx',
      '/usr/local/bin/corepack',
    ]) {
      expect(runs).toMatch(new RegExp(`rm -rf [^\\n]*${path.replace(/\//g, '\\/')}(\\s|$)`));
    }
    for (const copy of args(runtime, 'COPY')) expect(copy).not.toMatch(/(^|\s)\.\s/);
  });

  it('keeps the sandbox IdP out of the production image, in a target of its own', () => {
    const runtimeCopies = args(runtime, 'COPY').join('\n');
    expect(runtimeCopies).not.toContain('identity-sandbox');
    expect(runtimeCopies).toMatch(/\/dist\/apps\/token-vendor\s/);
    expect(args(sandbox, 'COPY').join('\n')).toMatch(/\/dist\/apps\/identity-sandbox\s/);
    expect(args(sandbox, 'COPY').join('\n')).not.toContain('dist/apps/token-vendor');
    const cmds = args(sandbox, 'CMD');
    expect(JSON.parse(cmds[cmds.length - 1])).toEqual([
      'node',
      'dist/apps/identity-sandbox/main.js',
    ]);
    const [healthcheck] = args(sandbox, 'HEALTHCHECK');
    expect(healthcheck).toContain('SANDBOX_PORT');
    expect(healthcheck).toContain("/health'");
    expect(args(sandbox, 'USER')).toEqual(['10001:10001']);
  });

  it('ends with the service, so a plain `docker build` makes the production image', () => {
    expect(runtime.name).toBe('runtime');
  });

  it('labels the images the OCI way', () => {
    expect(labels(runtime)).toEqual({
      'org.opencontainers.image.title': 'token-vendor',
      'org.opencontainers.image.description': expect.stringContaining('OAuth 2.0'),
      'org.opencontainers.image.version': '${VERSION}',
      'org.opencontainers.image.revision': '${REVISION}',
      'org.opencontainers.image.created': '${CREATED}',
      'org.opencontainers.image.licenses': 'UNLICENSED',
      'org.opencontainers.image.base.name': 'docker.io/library/${NODE_IMAGE}',
      'org.opencontainers.image.base.digest': '${NODE_DIGEST}',
    });
    expect(labels(sandbox)['org.opencontainers.image.title']).toBe('token-vendor identity sandbox');
    for (const name of ['VERSION', 'REVISION', 'CREATED', 'NODE_IMAGE', 'NODE_DIGEST']) {
      expect(args(runtime, 'ARG').map((a) => a.split('=')[0])).toContain(name);
    }
  });

  it('runs as a non-root user in production mode', () => {
    const users = args(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).toBe('10001:10001');
    const env = withBases(runtime)
      .filter((i) => i.op === 'ENV')
      .map((i) => i.args)
      .join(' ');
    expect(env).toMatch(/NODE_ENV=production/);
    expect(env).toMatch(/TOKEN_VENDOR_CONFIG=\/etc\/token-vendor\/config\.yaml/);
    expect(env).toMatch(/METRICS_PORT=9464/);
  });

  it('exposes the API and metrics ports, checks /health/live with node and starts the service', () => {
    expect(args(runtime, 'EXPOSE')).toEqual(['3000 9464']);
    const [healthcheck] = args(runtime, 'HEALTHCHECK');
    expect(healthcheck).toMatch(/CMD \["node",/);
    expect(healthcheck).toContain('/health/live');
    const cmds = args(runtime, 'CMD');
    expect(JSON.parse(cmds[cmds.length - 1])).toEqual(['node', 'dist/apps/token-vendor/main.js']);
  });
});

describe('.dockerignore', () => {
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());

  it.each(['node_modules', 'dist', '.git', 'test', '.env', 'coverage'])('excludes %s', (entry) => {
    expect(ignored).toContain(entry);
  });

  it('keeps what the build needs', () => {
    for (const needed of ['apps', 'libs', 'package.json', 'package-lock.json', 'nest-cli.json']) {
      expect(ignored).not.toContain(needed);
    }
  });
});
