import { UpstreamUnavailableError } from '@app/errors';
import { resolveLifetimeSeconds } from './expires-in.rule';
import { parseJsonObject } from './json-object';
import type { IssuedToken } from './token-request';

/** Far above any real token (CAS JWTs are ~1 KiB) but small enough to keep in Redis and headers. */
export const MAX_ACCESS_TOKEN_LENGTH = 16 * 1024;

/**
 * RFC 6749 Appendix A: access-token = 1*VSCHAR (%x20-7E). We also refuse the space, since the
 * token goes into `Authorization: Bearer <token>` headers where whitespace would split it.
 */
const PRINTABLE_NO_SPACE = /^[\x21-\x7E]+$/;

export interface TokenAnswerContext {
  /** Monotonic clock ms when the request was sent: the token's life counts from here. */
  requestedAt: number;
  /**
   * Wall-clock ms (the fleet's reference time when known) when the request was sent: what a
   * JWT's `exp`, stamped by the IdP's wall clock, is compared with. Default: requestedAt.
   */
  requestedAtWall?: number;
  /** The scope we asked for: reported when the IdP does not say which scope it granted. */
  requestedScope?: string;
}

/**
 * Validates the body of a 200 answer from the token endpoint (RFC 6749 §5.1) and turns it
 * into an IssuedToken. Strict on purpose: whatever passes here is cached and handed to
 * callers, so an answer that is not unmistakably a Bearer token is refused.
 *
 * Error details name the faulty field only, never the body: it may hold a token or HTML
 * with anything in it.
 *
 * @throws UpstreamUnavailableError('bad_answer')
 */
export function parseTokenResponse(body: string, ctx: TokenAnswerContext): IssuedToken {
  const answer = parseJsonObject(body);
  if (!answer) throw badAnswer('the token endpoint answer is not a JSON object');

  const accessToken = answer.access_token;
  if (typeof accessToken !== 'string' || accessToken.length === 0) {
    throw badAnswer('the answer has no access_token');
  }
  if (accessToken.length > MAX_ACCESS_TOKEN_LENGTH || !PRINTABLE_NO_SPACE.test(accessToken)) {
    throw badAnswer('the access_token is too long or has characters a token cannot have');
  }

  // RFC 6749 §5.1: token_type is REQUIRED; §7.1 and RFC 6750: the "Bearer" type is
  // case-insensitive. Any other type (mac, DPoP, ...) cannot be used the way our callers do.
  const tokenType = answer.token_type;
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
    throw badAnswer('the token_type is missing or not Bearer');
  }

  const grantedScope = answer.scope;
  if (grantedScope !== undefined && grantedScope !== null && typeof grantedScope !== 'string') {
    throw badAnswer('the scope is not a string');
  }

  const lifetimeSeconds = resolveLifetimeSeconds(
    answer.expires_in,
    accessToken,
    ctx.requestedAtWall ?? ctx.requestedAt,
  );
  const scope = grantedScope || ctx.requestedScope;
  return {
    accessToken,
    tokenType: 'Bearer',
    ...(scope ? { scope } : {}),
    requestedAt: ctx.requestedAt,
    expiresAt: ctx.requestedAt + lifetimeSeconds * 1000,
    lifetimeSeconds,
  };
}

function badAnswer(detail: string): UpstreamUnavailableError {
  return new UpstreamUnavailableError('bad_answer', detail);
}
