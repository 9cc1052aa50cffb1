import type { BackoffPolicy } from '@app/clock';
import type { StoredToken } from '@app/token-store';

/** Share of the refresh point that jitter may pull earlier, so clients do not refresh together. */
export const REFRESH_JITTER = 0.1;
/** Failed refreshes back off from this... */
export const RETRY_BASE_MS = 1_000;
/** ...doubling up to this. */
export const RETRY_CAP_MS = 60_000;
/** Failed refreshes wait in [half, full] of the capped step: never hot, still spread. */
export const REFRESH_BACKOFF: BackoffPolicy = {
  baseMs: RETRY_BASE_MS,
  capMs: RETRY_CAP_MS,
  jitter: 'equal',
};
/** After the IdP refused the credentials, the next try waits this long (not retried hot). */
export const REJECTED_RETRY_MS = 5 * 60_000;

/**
 * When to refresh a token: once `ratio` of its lifetime has passed, pulled earlier by up to
 * REFRESH_JITTER of that point. `random` is in [0, 1).
 */
export function refreshDueAt(token: StoredToken, ratio: number, random: number): number {
  const lifetime = token.expiresAt - token.requestedAt;
  return token.requestedAt + Math.floor(lifetime * ratio * (1 - REFRESH_JITTER * random));
}
