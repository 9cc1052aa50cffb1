import type { BackoffPolicy } from '@app/clock';

/** Attempts per fetchToken call, the first one included. */
export const DEFAULT_MAX_ATTEMPTS = 3;

export const RETRY_POLICY = {
  /**
   * Capped exponential backoff with full jitter: a ceiling of 250 ms doubling up to 4 s, the
   * wait uniform below it. Full jitter spreads the retries of many replicas that failed at the
   * same moment, so they do not hit a recovering IdP in step.
   */
  backoff: { baseMs: 250, capMs: 4_000, jitter: 'full' } satisfies BackoffPolicy,
  /** A Retry-After up to this long is waited out; a longer one ends the retries at once. */
  maxRetryAfterMs: 30_000,
  /** Retry-After we tell our callers when the IdP did not give one. */
  defaultRetryAfterSeconds: 5,
} as const;

/** Statuses worth another attempt: the IdP is overloaded or broken, not refusing us. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Statuses whose Retry-After we honour (RFC 9110 §10.2.3 for 503, RFC 6585 §4 for 429). */
export function honoursRetryAfter(status: number): boolean {
  return status === 429 || status === 503;
}

const DELTA_SECONDS = /^\d+$/;
const IMF_FIXDATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const RFC850_DATE = /^[A-Z][a-z]+, \d{2}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2}:\d{2} GMT$/;
const ASCTIME_DATE = /^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * A Retry-After header value (RFC 9110 §10.2.3) as milliseconds to wait from `nowMs`:
 * delta-seconds, or an HTTP-date in any of the three formats RFC 9110 §5.6.7 asks recipients
 * to accept. A date in the past means 0. Undefined when absent or unparsable (the header is
 * then ignored and the normal backoff applies).
 */
export function parseRetryAfterMs(
  value: string | null | undefined,
  nowMs: number,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (DELTA_SECONDS.test(text)) return Number(text) * 1000;
  let dateMs = Number.NaN;
  if (IMF_FIXDATE.test(text) || RFC850_DATE.test(text)) dateMs = Date.parse(text);
  // asctime carries no zone but is UTC by definition; without the suffix Date.parse would use local time.
  else if (ASCTIME_DATE.test(text)) dateMs = Date.parse(`${text} GMT`);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, dateMs - nowMs);
}
