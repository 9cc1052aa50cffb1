/** How many verified caller tokens are remembered; past this the oldest are forgotten first. */
export const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Verified caller tokens by the SHA-256 of the token, each until its `exp`: a cache hit skips
 * the signature check (an RSA verification costs more than the rest of a cache-hit request).
 * Bounded: insertion order is eviction order, and expired entries are dropped when met.
 * Holds only digests and verified claims, never a token.
 */
export class VerifiedTokenCache<T> {
  private readonly entries = new Map<string, { value: T; expiresAt: number }>();

  constructor(private readonly capacity = VERIFIED_TOKEN_CACHE_SIZE) {}

  get size(): number {
    return this.entries.size;
  }

  get(digest: string, now: number): T | undefined {
    const entry = this.entries.get(digest);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(digest);
      return undefined;
    }
    return entry.value;
  }

  set(digest: string, value: T, expiresAt: number): void {
    this.entries.delete(digest);
    while (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(digest, { value, expiresAt });
  }

  delete(digest: string): void {
    this.entries.delete(digest);
  }

  clear(): void {
    this.entries.clear();
  }
}
