import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/**
 * The service's version, from its package.json: the nearest one named `token-vendor` above
 * this file (the source tree in tests; `/app` above `dist/` in the image). `unknown` if none.
 */
export function buildVersion(start: string = __dirname): string {
  if (cached !== undefined && start === __dirname) return cached;
  let version = 'unknown';
  for (let dir = start; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
        if (pkg.name === 'token-vendor' && typeof pkg.version === 'string') {
          version = pkg.version;
          break;
        }
      } catch {
        // not ours or unreadable: keep looking upwards
      }
    }
    if (dirname(dir) === dir) break;
  }
  if (start === __dirname) cached = version;
  return version;
}
