import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  CallerIssuerUnavailableError,
  InvalidCallerTokenError,
  InvalidRequestError,
  TooManyRequestsError,
  UnauthorizedError,
} from '@app/errors';
import { AuditLog } from '@app/audit';
import { CallerBearerStrategy } from './caller-bearer.strategy';
import type { Caller } from './caller-registry';
import { FailedAuthLimiter } from './failed-auth.limiter';
import { IS_PUBLIC } from './public.decorator';
import {
  WorkloadCallerAuthenticator,
  type WorkloadAuthentication,
} from './workload-caller.authenticator';

interface GuardedRequest {
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, unknown>;
  body?: unknown;
  raw?: { rawHeaders?: string[] };
  id?: string;
  /** The authenticated caller, read by the handlers (TokensController) as request.user. */
  user?: Caller;
}

/**
 * The global guard: every route needs a known caller key, or a workload JWT naming a configured
 * caller, unless marked @Public(). Failed attempts are counted per source address; a source over
 * the limit gets 429 instead of 401. A valid credential is always let in, whatever its address
 * did: behind a mesh sidecar or NAT every caller shares one address, and one misconfigured caller
 * must not lock the others out. (Guessing a key is hopeless either way: keys are 256 random bits,
 * README "Callers"; a JWT must carry a valid signature.)
 */
@Injectable()
export class CallerAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly limiter: FailedAuthLimiter,
    private readonly audit: AuditLog,
    private readonly strategy: CallerBearerStrategy,
    private readonly workloads: WorkloadCallerAuthenticator,
  ) {}

  /**
   * Whether each handler is @Public(), read once per handler: decorators are fixed when the
   * class is defined, and reading the metadata again costs about a microsecond per request.
   */
  private readonly publicHandlers = new WeakMap<object, boolean>();

  // Synchronous on purpose for key callers and cached JWTs: it runs on every request. Only a
  // JWT not verified yet makes it asynchronous.
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (this.isPublic(context)) return true;
    const request = context.switchToHttp().getRequest<GuardedRequest>();
    // RFC 6750 also allows the key in the query or body, where it would end up in access
    // logs and proxies' histories; this service accepts only the Authorization header.
    const query = request.query ?? {};
    if ('access_token' in query || hasAccessTokenField(request.body)) {
      this.writeAudit(request, 'invalid_request');
      throw new InvalidRequestError('Send the caller key in the Authorization header only.');
    }
    if (hasDuplicateAuthorization(request.headers.authorization, request.raw?.rawHeaders)) {
      this.refuse(request);
    }
    const credential = this.strategy.authenticate(request);
    if (!credential) this.refuse(request);
    if (credential.kind === 'key') {
      request.user = credential.caller;
      return true;
    }
    const result = this.workloads.authenticate(credential.token);
    if (result instanceof Promise) {
      return result.then(
        (r) => this.admitWorkload(request, r),
        (e: unknown) => this.issuerUnavailable(request, e),
      );
    }
    return this.admitWorkload(request, result);
  }

  private isPublic(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    let isPublic = this.publicHandlers.get(handler);
    if (isPublic === undefined) {
      isPublic =
        this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [handler, context.getClass()]) ===
        true;
      this.publicHandlers.set(handler, isPublic);
    }
    return isPublic;
  }

  private admitWorkload(request: GuardedRequest, result: WorkloadAuthentication): boolean {
    if ('caller' in result) {
      request.user = result.caller;
      return true;
    }
    // Which check failed, and for a verified token that no caller names, who it was.
    this.refuse(request, new InvalidCallerTokenError(result.refused), {
      reason: result.refused,
      ...(result.workload !== undefined ? { workload: result.workload } : {}),
    });
  }

  /** A JWT whose issuer's keys cannot be fetched: 503, audited with the issuer's name. */
  private issuerUnavailable(request: GuardedRequest, e: unknown): never {
    if (e instanceof CallerIssuerUnavailableError) {
      this.writeAudit(request, e.code, { reason: e.reason, issuer: e.issuer });
    }
    throw e;
  }

  /**
   * A failed authentication: 429 while its source is over the limit, else counted and 401
   * (`refusal`, e.g. a JWT's `invalid_token`, when the credential was a token that failed a check).
   */
  private refuse(
    request: GuardedRequest,
    refusal: Error = new UnauthorizedError(),
    details: Record<string, string> = {},
  ): never {
    const source = request.ip ?? 'unknown';
    const wait = this.limiter.retryAfterSeconds(source);
    if (wait > 0) {
      this.writeAudit(request, 'too_many_requests', details);
      throw new TooManyRequestsError(wait);
    }
    this.limiter.recordFailure(source);
    this.writeAudit(request, 'unauthorized', details);
    throw refusal;
  }

  /** Refused requests are audited too (no caller is known; the attempted key is never logged). */
  private writeAudit(
    request: GuardedRequest & { url?: string },
    outcome: string,
    details: Record<string, string> = {},
  ): void {
    this.audit.write({
      msg: 'request refused',
      requestId: request.id,
      caller: null,
      path: request.url?.split('?')[0],
      source: request.ip,
      outcome,
      ...details,
    });
  }
}

function hasAccessTokenField(body: unknown): boolean {
  return typeof body === 'object' && body !== null && 'access_token' in body;
}

/**
 * Two Authorization headers are refused: Node keeps only the first, while a proxy in front may
 * act on the last, and the two must never disagree about who is calling.
 */
function hasDuplicateAuthorization(
  header: string | string[] | undefined,
  rawHeaders: readonly string[] = [],
): boolean {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    // Length first: most headers are skipped without allocating a lower-cased copy.
    if (name.length === 13 && name.toLowerCase() === 'authorization') count++;
  }
  return count > 1 || Array.isArray(header) || (typeof header === 'string' && header.includes(','));
}
