/**
 * In-process single flight: concurrent calls with the same key share one running promise.
 * The entry is removed when the promise settles, so a failure is not remembered.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /** Whether a call for this key is running now (a caller will wait rather than start one). */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  run(key: string, work: () => Promise<T>): Promise<T> {
    const existing = this.running.get(key);
    if (existing) return existing;
    // Started inside a promise chain, so a synchronous throw becomes a rejection like any other.
    const promise = Promise.resolve()
      .then(work)
      .finally(() => this.running.delete(key));
    this.running.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.running.size;
  }
}
