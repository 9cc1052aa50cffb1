import { CLOCK, CLOCK_SKEW, backoffDelayMs, type Clock, type ClockSkew } from '@app/clock';
import {
  UpstreamRejectedError,
  UpstreamUnavailableError,
  type UnavailableCause,
} from '@app/errors';
import { splitSigningCredential } from '@app/config';
import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { fetch } from 'undici';
import { signClientAssertion } from './client-assertion';
import { buildTokenHttpRequest, type TokenHttpRequest } from './client-authentication';
import { IdpDiscovery } from './idp-discovery';
import { IdpDispatchers } from './idp-dispatchers';
import { classifyErrorAnswer } from './error-response.classifier';
import { readBodyText } from './response-body';
import {
  DEFAULT_MAX_ATTEMPTS,
  RETRY_POLICY,
  honoursRetryAfter,
  parseRetryAfterMs,
} from './retry-policy';
import type { FetchOptions, IssuedToken, TokenRequest } from './token-request';
import { parseTokenResponse } from './token-response.parser';
import {
  UPSTREAM_OBSERVER,
  type AttemptOutcome,
  type AttemptTrace,
  type UpstreamAttempt,
  type UpstreamAttemptStart,
  type UpstreamObserver,
} from './upstream-observer';

/** A request whose token endpoint is known (configured or discovered). */
type ResolvedTokenRequest = TokenRequest & { tokenUrl: string };

/** Largest answer we read; a token answer is a few KiB (the access token is capped at 16 KiB). */
const MAX_ANSWER_BYTES = 64 * 1024;

type RetryableCause = Extract<UnavailableCause, 'bad_status' | 'timeout' | 'network'>;

/** How one attempt ended. Only `retry` results lead to another attempt. */
type AttemptResult =
  | { kind: 'ok'; status: number; token: IssuedToken }
  | {
      kind: 'final';
      outcome: Exclude<AttemptOutcome, 'ok'>;
      status?: number;
      error: UpstreamRejectedError | UpstreamUnavailableError;
    }
  | {
      kind: 'retry';
      outcome: RetryableCause;
      status?: number;
      /** Safe for logs and error messages: never the IdP's body or our credentials. */
      detail: string;
      retryAfterMs?: number;
    };

/**
 * The OAuth 2.0 client-credentials client (RFC 6749 §4.4): the only code that talks to the
 * identity providers. One call = one token, with per-attempt timeouts and retries on
 * transient failures only (network, timeout, 429, 5xx). Whatever it returns has passed
 * strict validation; whatever it throws is a domain error whose message carries neither the
 * secret, nor a token, nor the IdP's body. It caches nothing: that is the token store's job.
 */
/** When a token request was sent, on both clocks (see TokenAnswerContext). */
interface SentAt {
  requestedAt: number;
  requestedAtWall: number;
}

@Injectable()
export class OAuthClient implements OnApplicationShutdown {
  private readonly logger = new Logger(OAuthClient.name);
  private readonly dispatchers = new IdpDispatchers();

  constructor(
    @Inject(CLOCK) private readonly clock: Clock,
    @Optional() @Inject(UPSTREAM_OBSERVER) private readonly observer?: UpstreamObserver,
    @Optional() private readonly discovery?: IdpDiscovery,
    @Optional() @Inject(CLOCK_SKEW) private readonly skew?: ClockSkew,
  ) {}

  /**
   * Obtains a new access token. Rejects with UpstreamRejectedError (the IdP refused our
   * credentials or scope; never retried), UpstreamUnavailableError (no usable answer, after
   * retries where they make sense), or the caller's abort reason.
   */
  async fetchToken(request: TokenRequest, opts: FetchOptions = {}): Promise<IssuedToken> {
    const req: ResolvedTokenRequest = {
      ...request,
      tokenUrl:
        request.tokenUrl ??
        (await this.discoveredEndpoint(request, usesClientCertificate(request))),
    };
    assertUsableRequest(req);
    const maxAttempts = resolveMaxAttempts(opts.maxAttempts);
    const where = { environment: req.environment, clientId: req.clientId };

    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      const started = performance.now();
      // Taken right before sending: the token's life is counted from here, not from the answer,
      // on the monotonic clock; the wall reading (corrected by this replica's measured skew)
      // is for comparing with a JWT's `exp` and for a client assertion's `iat`/`exp`.
      const sentAt = {
        requestedAt: this.clock.monotonic(),
        requestedAtWall: this.skew ? this.skew.referenceNow(this.clock) : this.clock.now(),
      };
      // Built per attempt: a client assertion carries a fresh jti and iat each time.
      const http = await this.buildRequest(req, sentAt.requestedAtWall);
      const trace = this.beginTrace({ ...where, attempt });
      const result = await this.attempt(req, http, sentAt, opts.signal, trace?.headers);
      this.notify(
        {
          ...where,
          attempt,
          outcome: result.kind === 'ok' ? 'ok' : result.outcome,
          ...(result.status === undefined ? {} : { status: result.status }),
          durationMs: performance.now() - started,
        },
        trace,
      );

      if (result.kind === 'ok') {
        this.logger.debug({
          msg: 'Token issued',
          ...where,
          attempt,
          lifetimeSeconds: result.token.lifetimeSeconds,
        });
        return result.token;
      }

      const failure = {
        ...where,
        attempt,
        maxAttempts,
        cause: result.outcome,
        status: result.status,
      };
      if (result.kind === 'final') {
        this.logger.warn({ msg: 'Token request failed', ...failure, error: result.error.message });
        throw result.error;
      }

      const { retryAfterMs } = result;
      const retryAfterTooLong =
        retryAfterMs !== undefined && retryAfterMs > RETRY_POLICY.maxRetryAfterMs;
      if (attempt >= maxAttempts || retryAfterTooLong) {
        this.logger.warn({ msg: 'Token request failed; giving up', ...failure, retryAfterMs });
        throw new UpstreamUnavailableError(
          result.outcome,
          `${result.detail} (attempt ${attempt} of ${maxAttempts})`,
          retryAfterSeconds(retryAfterMs),
        );
      }

      const delayMs = retryAfterMs ?? backoffDelayMs(RETRY_POLICY.backoff, attempt);
      this.logger.warn({ msg: 'Token request failed; retrying', ...failure, delayMs });
      await this.clock.sleep(delayMs, opts.signal);
    }
  }

  /** A discovery environment's token endpoint; UpstreamUnavailableError while undiscovered. */
  private discoveredEndpoint(req: TokenRequest, mtls: boolean): Promise<string> {
    if (!this.discovery) {
      throw new TypeError(`Environment "${req.environment}" has no tokenUrl and no discovery.`);
    }
    return this.discovery.tokenEndpointOf(req.environment, mtls);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.dispatchers.close();
  }

  private async buildRequest(req: ResolvedTokenRequest, now: number): Promise<TokenHttpRequest> {
    if (req.authMethod !== 'private_key_jwt') return buildTokenHttpRequest(req);
    const { privateKey, certificate } = req.assertionCertificate
      ? splitSigningCredential(req.secret)
      : { privateKey: req.secret, certificate: undefined };
    const assertion = await signClientAssertion({
      clientId: req.clientId,
      tokenUrl: req.tokenUrl,
      privateKey,
      signingAlg: req.signingAlg ?? 'RS256',
      ...(req.keyId !== undefined ? { keyId: req.keyId } : {}),
      ...(certificate !== undefined ? { certificate } : {}),
      now,
    });
    return buildTokenHttpRequest(req, assertion);
  }

  private async attempt(
    req: ResolvedTokenRequest,
    http: TokenHttpRequest,
    sentAt: SentAt,
    callerSignal: AbortSignal | undefined,
    traceHeaders: Record<string, string> | undefined,
  ): Promise<AttemptResult> {
    const timeout = AbortSignal.timeout(req.timeoutMs);
    // The same signal covers reading the body, so a trickling answer also times out.
    const signal = callerSignal ? AbortSignal.any([timeout, callerSignal]) : timeout;
    let response: Response | undefined;
    let body: string | undefined;
    try {
      // undici's own fetch, so the request goes through its dispatcher (proxy, private CA).
      response = await fetch(req.tokenUrl, {
        method: 'POST',
        headers: traceHeaders ? { ...http.headers, ...traceHeaders } : http.headers,
        body: http.body,
        // Following a redirect would resend the credentials to wherever it points; a token
        // endpoint that redirects is misconfigured, so a 3xx is reported, not followed.
        redirect: 'manual',
        signal,
        dispatcher: this.dispatchers.for({
          ...(req.caFile !== undefined ? { caFile: req.caFile } : {}),
          ...(usesClientCertificate(req)
            ? { clientCredential: req.secret, owner: `${req.environment}/${req.clientId}` }
            : {}),
        }),
      });
      body = await readBodyText(response, MAX_ANSWER_BYTES);
    } catch (err) {
      if (callerSignal?.aborted) throw callerSignal.reason;
      const status = response?.status;
      if (timeout.aborted) {
        return {
          kind: 'retry',
          outcome: 'timeout',
          status,
          detail: `no answer within ${req.timeoutMs} ms`,
        };
      }
      return {
        kind: 'retry',
        outcome: 'network',
        status,
        detail: `network error (${networkCause(err)})`,
      };
    }
    return this.interpret(response, body, req, sentAt);
  }

  private interpret(
    response: Response,
    body: string | undefined,
    req: TokenRequest,
    sentAt: SentAt,
  ): AttemptResult {
    const { status } = response;
    if (status === 200) {
      if (body === undefined) {
        const error = new UpstreamUnavailableError(
          'bad_answer',
          'the token endpoint answer is too large',
        );
        return { kind: 'final', outcome: 'bad_answer', status, error };
      }
      try {
        const token = parseTokenResponse(body, {
          ...sentAt,
          ...(req.scope ? { requestedScope: req.scope } : {}),
        });
        return { kind: 'ok', status, token };
      } catch (error) {
        if (error instanceof UpstreamUnavailableError) {
          return { kind: 'final', outcome: 'bad_answer', status, error };
        }
        throw error;
      }
    }

    const answer = classifyErrorAnswer(status, body ?? '');
    const detail = `the token endpoint answered HTTP ${status}`;
    switch (answer.kind) {
      case 'rejected':
        return {
          kind: 'final',
          outcome: 'rejected',
          status,
          error: new UpstreamRejectedError(answer.rejection, status),
        };
      case 'retryable': {
        const retryAfterMs = honoursRetryAfter(status)
          ? parseRetryAfterMs(response.headers.get('retry-after'), this.clock.now())
          : undefined;
        return {
          kind: 'retry',
          outcome: 'bad_status',
          status,
          detail,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        };
      }
      case 'unexpected': {
        const why =
          status >= 300 && status < 400 ? `${detail} (redirects are not followed)` : detail;
        const error = new UpstreamUnavailableError('bad_status', why);
        return { kind: 'final', outcome: 'bad_status', status, error };
      }
    }
  }

  /** Tracing headers for one attempt (W3C trace context), when the observer traces. */
  private beginTrace(where: UpstreamAttemptStart): AttemptTrace | undefined {
    try {
      return this.observer?.beginAttempt?.(where);
    } catch (err) {
      this.logger.warn({
        msg: 'UpstreamObserver.beginAttempt threw; ignored',
        error: err instanceof Error ? err.message : String(err),
      });
      return undefined;
    }
  }

  /** Observers are best-effort: a broken metric must never break token issuance. */
  private notify(event: UpstreamAttempt, trace?: AttemptTrace): void {
    if (!this.observer) return;
    try {
      trace?.end(event);
      this.observer.onAttempt(event);
    } catch (err) {
      this.logger.warn({
        msg: 'UpstreamObserver.onAttempt threw; ignored',
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

/** RFC 8705: the client authenticates with the certificate of its TLS connection. */
function usesClientCertificate(req: TokenRequest): boolean {
  return req.authMethod === 'tls_client_auth' || req.authMethod === 'self_signed_tls_client_auth';
}

/** Configuration mistakes fail fast instead of being retried as "network errors". */
function assertUsableRequest(req: ResolvedTokenRequest): void {
  let url: URL;
  try {
    url = new URL(req.tokenUrl);
  } catch {
    throw new TypeError(`The tokenUrl of environment "${req.environment}" is not a valid URL.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`The tokenUrl of environment "${req.environment}" must be http(s).`);
  }
  if (url.username || url.password) {
    throw new TypeError(
      `The tokenUrl of environment "${req.environment}" must not hold credentials.`,
    );
  }
  if (!Number.isInteger(req.timeoutMs) || req.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive integer, got ${req.timeoutMs}.`);
  }
}

function resolveMaxAttempts(value: number | undefined): number {
  const attempts = value ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`maxAttempts must be an integer >= 1, got ${attempts}.`);
  }
  return attempts;
}

/** Whole seconds for our own Retry-After: the IdP's when it gave one, at least 1 s. */
function retryAfterSeconds(retryAfterMs: number | undefined): number {
  return retryAfterMs === undefined
    ? RETRY_POLICY.defaultRetryAfterSeconds
    : Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/** A short, credential-free name for a fetch failure: the system error code when there is one. */
function networkCause(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  for (const candidate of [cause, err]) {
    if (typeof candidate === 'object' && candidate !== null && 'code' in candidate) {
      const { code } = candidate;
      if (typeof code === 'string') return code;
    }
  }
  if (cause instanceof AggregateError) return networkCause(cause.errors[0]);
  return err instanceof Error ? err.name : 'unknown';
}
