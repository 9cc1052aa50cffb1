import { Injectable, Logger, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { InvalidRequestError, TooManyRequestsError, UnauthorizedError } from '@app/errors';
import type { Caller } from './caller-registry';
import { CALLER_STRATEGY } from './caller.strategy';
import { FailedAuthLimiter } from './failed-auth.limiter';
import { IS_PUBLIC } from './public.decorator';

interface GuardedRequest {
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
  query?: Record<string, unknown>;
  body?: unknown;
  raw?: { rawHeaders?: string[] };
  id?: string;
}

/**
 * The global guard: every route needs a known caller key unless marked @Public().
 * Failed attempts are counted per source address; a source over the limit gets 429 before
 * its key is even looked at.
 */
@Injectable()
export class CallerAuthGuard extends AuthGuard(CALLER_STRATEGY) {
  private readonly audit = new Logger('Audit');

  constructor(
    private readonly reflector: Reflector,
    private readonly limiter: FailedAuthLimiter,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    const request = context.switchToHttp().getRequest<GuardedRequest>();
    const source = request.ip ?? 'unknown';
    const wait = this.limiter.retryAfterSeconds(source);
    if (wait > 0) {
      this.writeAudit(request, 'too_many_requests');
      throw new TooManyRequestsError(wait);
    }
    // RFC 6750 also allows the key in the query or body, where it would end up in access
    // logs and proxies' histories; this service accepts only the Authorization header.
    const query = request.query ?? {};
    if ('access_token' in query || hasAccessTokenField(request.body)) {
      this.writeAudit(request, 'invalid_request');
      throw new InvalidRequestError('Send the caller key in the Authorization header only.');
    }
    if (hasDuplicateAuthorization(request.headers.authorization, request.raw?.rawHeaders)) {
      this.limiter.recordFailure(source);
      this.writeAudit(request, 'unauthorized');
      throw new UnauthorizedError();
    }
    return (await super.canActivate(context)) as boolean;
  }

  override handleRequest<T = Caller>(
    err: unknown,
    caller: unknown,
    _info: unknown,
    context: ExecutionContext,
  ): T {
    if (err || !caller) {
      const request = context.switchToHttp().getRequest<GuardedRequest>();
      this.limiter.recordFailure(request.ip ?? 'unknown');
      this.writeAudit(request, 'unauthorized');
      throw new UnauthorizedError();
    }
    return caller as T;
  }

  /** Refused requests are audited too (no caller is known; the attempted key is never logged). */
  private writeAudit(request: GuardedRequest & { url?: string }, outcome: string): void {
    this.audit.log({
      msg: 'request refused',
      requestId: request.id,
      audit: true,
      caller: null,
      path: request.url?.split('?')[0],
      source: request.ip,
      outcome,
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
    if (rawHeaders[i].toLowerCase() === 'authorization') count++;
  }
  return count > 1 || Array.isArray(header) || (typeof header === 'string' && header.includes(','));
}
