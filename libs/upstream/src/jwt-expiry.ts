const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * The numeric `exp` claim (seconds since the epoch) of a JWS-compact access token, or
 * undefined for anything else. Only the payload is decoded and the signature is NOT
 * checked: we are not the token's audience, we only want to avoid claiming more life than
 * the token itself admits. Opaque tokens, encrypted (5-part) JWTs and junk are tolerated.
 */
export function jwtExpirySeconds(accessToken: string): number | undefined {
  const parts = accessToken.split('.');
  if (parts.length !== 3 || !BASE64URL.test(parts[1])) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const exp = (payload as Record<string, unknown>).exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}
