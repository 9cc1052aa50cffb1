import type { SandboxRequestRecord, SandboxStats } from './types';

/** How many token requests are remembered: enough for any test, bounded for a long demo. */
export const REQUEST_LOG_SIZE = 100;

/** Counters and the recent token requests, which tests use to see what the IdP was sent. */
export class SandboxStatsRecorder {
  private counters: SandboxStats = emptyStats();
  private log: SandboxRequestRecord[] = [];

  tokenRequest(): void {
    this.counters.tokenRequests += 1;
  }

  client(clientId: string | undefined): void {
    if (clientId === undefined) return;
    this.counters.byClient[clientId] = (this.counters.byClient[clientId] ?? 0) + 1;
  }

  issued(): void {
    this.counters.issued += 1;
  }

  rejected(): void {
    this.counters.rejected += 1;
  }

  faulted(): void {
    this.counters.faulted += 1;
  }

  /** Keeps the record (the same object, so its status can be filled in when answered). */
  record(entry: SandboxRequestRecord): void {
    this.log.push(entry);
    if (this.log.length > REQUEST_LOG_SIZE) this.log.shift();
  }

  /** Copies, so callers cannot change what the sandbox remembers. */
  snapshot(): SandboxStats {
    return { ...this.counters, byClient: { ...this.counters.byClient } };
  }

  requests(): SandboxRequestRecord[] {
    return this.log.map((entry) => ({ ...entry }));
  }

  reset(): void {
    this.counters = emptyStats();
    this.log = [];
  }
}

function emptyStats(): SandboxStats {
  // No prototype: a client id such as "__proto__" must count like any other.
  const byClient = Object.create(null) as Record<string, number>;
  return { tokenRequests: 0, byClient, issued: 0, rejected: 0, faulted: 0 };
}
