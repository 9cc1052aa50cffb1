import type { Stats } from 'node:fs';

/**
 * A file's identity on disk: device, inode, size and modification time. The polls compare it
 * instead of reading the file, and it changes when the file is replaced: the Kubernetes `..data`
 * swap gives the new file a new inode (README "Rotation and reload").
 */
export function fileIdentity(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
}
