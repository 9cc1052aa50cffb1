import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';

const DATA_DIR = '..data';
const DATA_TMP = '..data_tmp';

/**
 * A folder laid out the way the kubelet lays out a mounted Secret (its AtomicWriter):
 *
 *     ..2026_11_27_10_00_00.123456789/<key>   the real files of one version
 *     ..data -> ..2026_11_27_10_00_00.123456789
 *     <key> -> ..data/<key>                   what the pod reads
 *
 * An update writes a new timestamped folder, points a `..data_tmp` symlink at it, renames
 * `..data_tmp` over `..data` (the atomic swap: a reader sees the old version or the new one,
 * never a mix), fixes the user-visible links of added or removed keys, then deletes the old
 * folder. The user-visible files themselves are never written, so a watch on them sees nothing.
 */
export class K8sSecretVolume {
  private constructor(readonly dir: string) {}

  /** Creates the volume (the folder may exist and be empty) with its first version. */
  static create(dir: string, files: Record<string, string>): K8sSecretVolume {
    mkdirSync(dir, { recursive: true });
    const volume = new K8sSecretVolume(dir);
    volume.update(files);
    return volume;
  }

  /** The path a pod reads for `key` (what `secretFile` points at). */
  path(key: string): string {
    return join(this.dir, key);
  }

  /** The timestamped folder `..data` points at now (undefined before the first version). */
  currentVersion(): string | undefined {
    return existsSync(join(this.dir, DATA_DIR))
      ? readlinkSync(join(this.dir, DATA_DIR))
      : undefined;
  }

  /** Every entry of the folder, hidden ones included (for assertions on the layout). */
  entries(): string[] {
    return readdirSync(this.dir).sort();
  }

  /** Publishes a new version holding exactly `files`, as the kubelet does on a Secret update. */
  update(files: Record<string, string>): void {
    const previous = this.currentVersion();
    // (1) The payload goes into a fresh timestamped folder.
    const version = this.newVersionDir();
    for (const [key, content] of Object.entries(files)) {
      writeFileSync(join(this.dir, version, key), content, { mode: 0o644 });
    }
    // (2) ..data_tmp -> the new folder, renamed over ..data: one atomic swap.
    const tmp = join(this.dir, DATA_TMP);
    rmSync(tmp, { force: true });
    symlinkSync(version, tmp);
    renameSync(tmp, join(this.dir, DATA_DIR));
    // (3) User-visible links: <key> -> ..data/<key> for new keys; removed keys lose theirs.
    for (const key of Object.keys(files)) {
      if (!isSymlink(this.path(key))) symlinkSync(join(DATA_DIR, key), this.path(key));
    }
    for (const entry of readdirSync(this.dir)) {
      if (!entry.startsWith('..') && !(entry in files)) unlinkSync(this.path(entry));
    }
    // (4) The old version goes last.
    if (previous) rmSync(join(this.dir, previous), { recursive: true, force: true });
  }

  private newVersionDir(): string {
    const now = new Date();
    const p = (n: number, width = 2): string => String(n).padStart(width, '0');
    // The kubelet's pattern: `..` + "2006_01_02_15_04_05." (UTC) + a random suffix.
    const stamp = `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(
      now.getUTCHours(),
    )}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
    for (;;) {
      const name = `${stamp}${randomInt(100_000_000, 1_000_000_000)}`;
      if (existsSync(join(this.dir, name))) continue;
      mkdirSync(join(this.dir, name), { mode: 0o755 });
      return name;
    }
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
