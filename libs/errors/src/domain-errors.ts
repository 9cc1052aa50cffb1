import type { ErrorCode } from './error-codes';

/**
 * Domain errors: plain Error subclasses thrown by the libraries, mapped to the README's
 * HTTP answers in one place (DomainExceptionFilter). Messages never carry secrets, caller
 * keys, tokens or the IdP's raw error bodies.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  abstract readonly code: ErrorCode;
  /** Seconds for a Retry-After header, when the answer has one. */
  retryAfterSeconds?: number;
  /** The WWW-Authenticate challenge of a 401, when it says more than the default one. */
  wwwAuthenticate?: string;

  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidRequestError extends DomainError {
  readonly status = 400;
  readonly code = 'invalid_request';
}

export class UnauthorizedError extends DomainError {
  readonly status = 401;
  readonly code = 'unauthorized';
  constructor(message = 'A valid caller key is required (Authorization: Bearer <key>).') {
    super(message);
  }
}

/**
 * A bearer that is a JWT (a workload identity) and was refused: expired, badly signed, for
 * another audience, or naming no configured caller. RFC 6750 §3.1's `invalid_token` tells the
 * caller to get a fresh token rather than retry this one. `reason` is for the audit log only.
 */
export class InvalidCallerTokenError extends UnauthorizedError {
  override readonly wwwAuthenticate = 'Bearer realm="token-vendor", error="invalid_token"';
  constructor(readonly reason: string) {
    super('The caller token is not valid (Authorization: Bearer <token>).');
  }
}

/**
 * A caller token's issuer keys cannot be fetched and none are cached: only JWT callers wait.
 * `issuer` (the configured issuer's name) and `reason` are for the audit log only.
 */
export class CallerIssuerUnavailableError extends DomainError {
  readonly status = 503;
  readonly code = 'upstream_unavailable';
  readonly reason = 'caller_issuer_keys';
  constructor(
    readonly issuer: string,
    retryAfterSeconds = 5,
  ) {
    super("The caller token's issuer keys cannot be fetched; retry later.");
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class ForbiddenError extends DomainError {
  readonly status = 403;
  readonly code = 'forbidden';
  constructor(message = 'This caller may not use this endpoint.') {
    super(message);
  }
}

/**
 * No such client in that environment, or the caller is not allowed it. Both cases give the
 * same message so callers cannot enumerate clients; `reason` is for the audit log only.
 */
export class UnknownClientError extends DomainError {
  readonly status = 404;
  readonly code = 'unknown_client';
  constructor(readonly reason: 'not_configured' | 'not_allowed' = 'not_configured') {
    super('No such client is available to this caller.');
  }
}

export class TooManyRequestsError extends DomainError {
  readonly status = 429;
  readonly code = 'too_many_requests';
  constructor(retryAfterSeconds: number) {
    super('Too many failed authentications from this source; retry later.');
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** Why the IdP refused us: the OAuth error code it sent (RFC 6749 §5.2). */
export type UpstreamRejection =
  | 'invalid_client'
  | 'unauthorized_client'
  | 'invalid_scope'
  | 'invalid_grant'
  | 'invalid_request'
  | 'unsupported_grant_type'
  | 'access_denied';

export class UpstreamRejectedError extends DomainError {
  readonly status = 502;
  readonly code = 'upstream_rejected';
  constructor(
    readonly rejection: UpstreamRejection,
    readonly upstreamStatus: number,
  ) {
    super(`The identity provider refused the credentials or scope (${rejection}).`);
  }
}

/** Why the IdP could not give us a usable token; also the metric label for refresh failures. */
export type UnavailableCause = 'timeout' | 'network' | 'bad_status' | 'bad_answer' | 'too_short';

export class UpstreamUnavailableError extends DomainError {
  readonly status = 503;
  readonly code = 'upstream_unavailable';
  constructor(
    readonly reason: UnavailableCause,
    detail: string,
    retryAfterSeconds = 5,
  ) {
    super(`The identity provider is unavailable: ${detail}`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * Why a failed request was not served, beside its outcome (README "Logs and metrics"):
 * `not_configured` / `not_allowed` for unknown_client, the IdP's OAuth error for
 * upstream_rejected, the cause (timeout, network, bad_status, bad_answer, too_short) for
 * upstream_unavailable. Codes only, never the IdP's answer.
 */
export function reasonOf(e: unknown): string | undefined {
  if (e instanceof UnknownClientError || e instanceof UpstreamUnavailableError) return e.reason;
  if (e instanceof UpstreamRejectedError) return e.rejection;
  return undefined;
}
