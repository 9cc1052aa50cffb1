/** Attempts per request to the service, the first included. */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** Full-jitter exponential backoff: attempt n waits random × min(cap, base × 2^(n-1)). */
export const BACKOFF_BASE_MS = 200;
export const BACKOFF_CAP_MS = 5_000;
/** A `Retry-After` longer than this ends the retries: the caller is better told at once. */
export const MAX_RETRY_AFTER_MS = 30_000;

/**
 * How long to wait before the next attempt, or undefined when the service asked for a pause
 * longer than MAX_RETRY_AFTER_MS. A `Retry-After` is honoured as a minimum; the jitter keeps
 * many callers that failed together from retrying together.
 */
export function retryDelayMs(
  attempt: number,
  retryAfterMs: number | undefined,
  random: () => number,
): number | undefined {
  if (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS) return undefined;
  const jittered = Math.floor(
    random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)),
  );
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; undefined when absent or unreadable. */
export function parseRetryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
