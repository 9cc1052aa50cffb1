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

/** Stages, with FROM images resolved through the global ARG defaults. */
function stages(text: string): Stage[] {
  const globalArgs = new Map<string, string>();
  const result: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') {
      const [image, as, name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      const resolved = image.replace(/\$\{?(\w+)\}?/g, (_m, arg: string) => globalArgs.get(arg)!);
      result.push({
        image: resolved,
        name: as?.toUpperCase() === 'AS' ? name : undefined,
        body: [],
      });
    } else if (result.length === 0 && ins.op === 'ARG') {
      const [key, value = ''] = ins.args.split('=');
      globalArgs.set(key, value);
    } else if (result.length > 0) {
      result[result.length - 1].body.push(ins);
    }
  }
  return result;
}

const all = stages(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = all[all.length - 1];
const args = (stage: Stage, op: string) => stage.body.filter((i) => i.op === op).map((i) => i.args);
const stageNamed = (name: string) => all.find((s) => s.name === name)!;

/** The stage a `COPY --from=X <src> ...` in the runtime stage copies `src` from. */
function copiedFrom(src: string): Stage {
  const copy = args(runtime, 'COPY').find((a) => a.split(/\s+/).some((w) => w.endsWith(src)));
  expect(copy).toBeDefined();
  const from = /--from=(\S+)/.exec(copy!)?.[1];
  expect(from).toBeDefined();
  return stageNamed(from!);
}

describe('Dockerfile', () => {
  it('is multi-stage on Node 22 or 24 LTS everywhere', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const stage of all) expect(stage.image).toMatch(/^node:(22|24)([-.][\w.-]+)?$/);
  });

  it('builds dist/ in a stage with the full dependency tree', () => {
    const build = copiedFrom('/dist');
    const runs = args(build, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci(?![^\n]*--omit)/);
    expect(runs).toContain('npm run build');
  });

  it('ships production dependencies only', () => {
    const deps = copiedFrom('/node_modules');
    expect(args(deps, 'RUN').join('\n')).toMatch(/npm (ci|prune)\b[^\n]*--omit=dev/);
    // Nothing in the runtime stage installs, and it takes no whole source tree.
    expect(args(runtime, 'RUN').join('\n')).not.toMatch(/\bnpm\b/);
    for (const copy of args(runtime, 'COPY')) expect(copy).not.toMatch(/(^|\s)\.\s/);
  });

  it('runs as a non-root user in production mode', () => {
    const users = args(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    expect(args(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
    expect(args(runtime, 'ENV').join(' ')).toMatch(
      /TOKEN_VENDOR_CONFIG=\/etc\/token-vendor\/config\.yaml/,
    );
  });

  it('exposes 3000, checks /health/live with node and starts the service', () => {
    expect(args(runtime, 'EXPOSE')).toEqual(['3000']);
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
