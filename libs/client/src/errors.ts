/**
 * Every failure of the SDK is a TokenVendorError; the service's answers are subclasses named
 * after the error code they carry, so callers can `instanceof` the case they handle.
 */
export class TokenVendorError extends Error {
  constructor(
    message: string,
    /** The HTTP status of the service's answer; undefined when no answer came. */
    readonly status: number | undefined,
    /** The `error` field of the service's JSON error body (`unknown_client`, ...). */
    readonly code: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 400 `invalid_request`: a malformed client id, a bad `minTtl`, an unknown or ambiguous environment. */
export class InvalidRequestError extends TokenVendorError {}

/** 401 `unauthorized`: the caller key (or ServiceAccount token) was refused. */
export class CallerUnauthorizedError extends TokenVendorError {}

/** 404 `unknown_client`: no such client, or this caller may not use it (the service does not say which). */
export class UnknownClientError extends TokenVendorError {}

/** 429 `too_many_requests`: too many failed authentications from this source; not retried. */
export class TooManyRequestsError extends TokenVendorError {
  constructor(
    message: string,
    status: number,
    code: string,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message, status, code);
  }
}

/** 502 `upstream_rejected`: the identity provider refused the service's credentials or scope. */
export class UpstreamRejectedError extends TokenVendorError {}

/** 503 `upstream_unavailable` (or another 5xx) after every retry. */
export class UpstreamUnavailableError extends TokenVendorError {
  constructor(
    message: string,
    status: number,
    code: string,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message, status, code);
  }
}

/** The service could not be reached (connection refused, reset, timeout) after every retry. */
export class VendorUnreachableError extends TokenVendorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, undefined, 'unreachable');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** The service answered something that is not its documented body (a proxy's page, cut JSON). */
export class BadAnswerError extends TokenVendorError {}

/** The SDK's options are wrong (no credential, two credentials, a bad base URL). */
export class ClientConfigError extends TokenVendorError {
  constructor(message: string) {
    super(message, undefined, 'bad_configuration');
  }
}
