import { readFile, stat } from 'node:fs/promises';
import { ClientConfigError } from './errors';

/** Files larger than this are not a caller key or a ServiceAccount token: refused, not sent. */
export const MAX_CREDENTIAL_FILE_BYTES = 64 * 1024;

/**
 * The bearer the SDK presents to the service: a fixed caller key, or the content of a file (a
 * mounted caller key, or a projected Kubernetes ServiceAccount token that the kubelet
 * rotates). A file is checked by `stat` (inode, size, modification time; the `..data`
 * symlink swap of a Kubernetes volume gives the file a new inode) before every request to the
 * service and re-read when it changed, so a rotation needs no restart. Requests to the
 * service are rare (a token is held until near its expiry), so the check costs nothing
 * on the cache-hit path.
 */
export interface CallerCredential {
  /** The current bearer. */
  current(): Promise<string>;
  /** Re-reads the file whatever its stat says; true when the bearer changed (worth a retry). */
  reload(): Promise<boolean>;
}

export function fixedCredential(key: string): CallerCredential {
  if (key.trim() === '') throw new ClientConfigError('callerKey is empty');
  const bearer = key.trim();
  return { current: () => Promise.resolve(bearer), reload: () => Promise.resolve(false) };
}

export function fileCredential(path: string, option: string): CallerCredential {
  let identity = '';
  let bearer: string | undefined;

  const read = async (): Promise<string> => {
    let info;
    let text;
    try {
      info = await stat(path);
      if (info.size > MAX_CREDENTIAL_FILE_BYTES)
        throw new ClientConfigError(`${option}: ${path} is larger than 64 KiB`);
      text = (await readFile(path, 'utf8')).trim();
    } catch (e) {
      if (e instanceof ClientConfigError) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new ClientConfigError(`${option}: cannot read ${path} (${code})`);
    }
    if (text === '') throw new ClientConfigError(`${option}: ${path} is empty`);
    identity = identityOf(info);
    bearer = text;
    return text;
  };

  return {
    async current() {
      if (bearer === undefined) return read();
      let info;
      try {
        info = await stat(path);
      } catch {
        // Mid-swap or briefly unmounted: keep presenting the last bearer read.
        return bearer;
      }
      return identityOf(info) === identity ? bearer : read();
    },
    async reload() {
      const before = bearer;
      try {
        return (await read()) !== before;
      } catch {
        return false;
      }
    },
  };
}

function identityOf(info: { ino: number; size: number; mtimeMs: number }): string {
  return `${info.ino}:${info.size}:${info.mtimeMs}`;
}
