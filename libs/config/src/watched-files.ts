import { statSync } from 'node:fs';
import { fileIdentity } from './file-identity';

/**
 * What a look at watched files found: `changed` when they now hold another value (adopted),
 * `unchanged` when nothing usable is new, `unusable` (once per version of the files) when they
 * were read and the value cannot be used.
 */
export type FileCheck = 'unchanged' | 'changed' | { readonly unusable: string };

/**
 * A value read from files and used by connections made later (a CA bundle, a client certificate
 * pair): read at start, where a problem is an error, then looked at again on demand: a `stat` of
 * each file, and a read only when one of them changed. While a file is missing or unreadable (a
 * swap in progress) or the value cannot be used, the last good value stays in use (README
 * "Egress and trust", "Redis over TLS").
 */
export class WatchedFiles<T> {
  private identity: string;
  private current: T;

  /**
   * @param read reads and checks the value; throws the file system's error (with its `code`)
   *   when a file cannot be read, else an Error whose message is the problem
   * @param same whether two values are the same (a new file with the same value is no change)
   */
  constructor(
    private readonly paths: readonly string[],
    private readonly read: () => T,
    private readonly same: (a: T, b: T) => boolean,
  ) {
    this.identity = this.identityNow();
    this.current = read();
  }

  get value(): T {
    return this.current;
  }

  recheck(): FileCheck {
    let identity: string;
    try {
      identity = this.identityNow();
    } catch {
      return 'unchanged';
    }
    if (identity === this.identity) return 'unchanged';
    let value: T;
    try {
      value = this.read();
    } catch (e) {
      // Unreadable for a moment: looked at again next time. Read but unusable: said once, and
      // not read again until a file changes.
      if ((e as NodeJS.ErrnoException).code !== undefined) return 'unchanged';
      this.identity = identity;
      return { unusable: (e as Error).message };
    }
    this.identity = identity;
    if (this.same(value, this.current)) return 'unchanged';
    this.current = value;
    return 'changed';
  }

  private identityNow(): string {
    return this.paths.map((p) => fileIdentity(statSync(p))).join('|');
  }
}
