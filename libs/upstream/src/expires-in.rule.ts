import { UpstreamUnavailableError } from '@app/errors';
import { jwtExpirySeconds } from './jwt-expiry';

/** Lifetime assumed when the IdP says nothing about it and the token carries no `exp`. */
export const DEFAULT_LIFETIME_SECONDS = 300;
/** No token is believed to live longer than a day, whatever the IdP claims. */
export const MAX_LIFETIME_SECONDS = 86_400;

/** A JSON string holding a plain decimal number: digits, optionally a fraction. */
const DECIMAL_STRING = /^\d+(\.\d+)?$/;

/**
 * The `expires_in` rule: how long (whole seconds, counted from when the request was sent)
 * a token is believed to live.
 *
 * 1. `expires_in` may be a JSON number or a string of decimal digits, optionally with a
 *    fraction (`1200`, `"1200"`, `3.5`, `"3.5"`). Anything else that is present (`"abc"`,
 *    `"1e3"`, `" 12"`, `true`, `{}`, `[]`) makes the answer invalid (`bad_answer`).
 * 2. Fractions are rounded DOWN: we never claim more life than was granted (`3.5` → 3).
 * 3. Zero or negative after rounding (`0`, `-1`, `0.5`) makes the answer invalid: such a
 *    token is useless, and serving it would only move the failure to the caller.
 * 4. Missing or `null`: if the access token is a JWT with a numeric `exp` claim, the
 *    lifetime is `exp - requestedAt` (rounded down, must be > 0); otherwise a conservative
 *    DEFAULT_LIFETIME_SECONDS (300 s), so an unknown lifetime is refreshed early rather than
 *    served after the IdP has expired it.
 * 5. More than MAX_LIFETIME_SECONDS (86 400 s, e.g. `1e12`) is clamped to it: a token is
 *    never "valid forever", so a broken IdP answer cannot pin a token in the cache.
 * 6. When the token is a JWT with a numeric `exp`, the lifetime is never longer than `exp`
 *    allows (the smaller of the two wins); a JWT already expired by its own `exp` is invalid.
 *    The JWT signature is not checked: we are not its audience.
 *
 * @param expiresIn the answer's `expires_in` as parsed from JSON (undefined when absent)
 * @param requestedAtMs wall-clock ms when the request was sent (the fleet's reference time when
 *   known: it is compared with `exp`, which the IdP stamped by its wall clock)
 * @throws UpstreamUnavailableError('bad_answer') when the rule rejects the answer
 */
export function resolveLifetimeSeconds(
  expiresIn: unknown,
  accessToken: string,
  requestedAtMs: number,
): number {
  const jwtExp = jwtExpirySeconds(accessToken);
  const jwtLeft = jwtExp === undefined ? undefined : Math.floor(jwtExp - requestedAtMs / 1000);
  if (jwtLeft !== undefined && jwtLeft <= 0) {
    throw badAnswer('the access token is already expired by its exp claim');
  }

  let granted: number;
  if (expiresIn === undefined || expiresIn === null) {
    granted = jwtLeft ?? DEFAULT_LIFETIME_SECONDS;
  } else {
    // Math.floor(Infinity) stays Infinity (JSON `1e400`) and is clamped below like any absurd value.
    granted = Math.floor(expiresInSeconds(expiresIn));
    if (!(granted > 0)) throw badAnswer('expires_in is not positive');
  }

  const clamped = Math.min(granted, MAX_LIFETIME_SECONDS);
  return jwtLeft === undefined ? clamped : Math.min(clamped, jwtLeft);
}

function expiresInSeconds(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && DECIMAL_STRING.test(value)) return Number(value);
  throw badAnswer('expires_in is neither a number nor a numeric string');
}

function badAnswer(detail: string): UpstreamUnavailableError {
  return new UpstreamUnavailableError('bad_answer', detail);
}
