import type { StoredToken } from '@app/token-store';

/** Share of the refresh point that jitter may pull earlier, so clients do not refresh together. */
export const REFRESH_JITTER = 0.1;
/** Failed refreshes back off from this... */
export const RETRY_BASE_MS = 1_000;
/** ...doubling up to this. */
export const RETRY_CAP_MS = 60_000;
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

/** Capped exponential backoff with jitter in [half, full] of the step. */
export function retryDelayMs(failures: number, random: number): number {
  const step = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
  return Math.floor(step / 2 + (step / 2) * random);
}
