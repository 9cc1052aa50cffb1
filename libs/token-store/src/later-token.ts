import type { StoredToken } from './token-store';

/**
 * Expiries measured through Redis (remaining lives counted from before each read or write)
 * agree only to within round trips: closer than this (ms) they are the same expiry.
 */
export const EXPIRY_TIE_MS = 250;

/**
 * "Keep the later token", in one place: of two tokens the one that expires later (the first
 * on a tie, so a held copy is not replaced by an equal one). The fenced write in Redis applies
 * the same rule in Lua (redis-token.store.ts).
 */
export function laterToken(
  a: StoredToken | undefined,
  b: StoredToken | undefined,
): StoredToken | undefined {
  if (!a) return b;
  if (!b) return a;
  return a.expiresAt >= b.expiresAt ? a : b;
}

/** Whether `candidate` replaces `held` under that rule. */
export function replaces(candidate: StoredToken, held: StoredToken | undefined): boolean {
  return held === undefined || candidate.expiresAt > held.expiresAt;
}
