import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Caller } from '@app/auth';
import { ForbiddenError } from '@app/errors';
import { AdminAudit } from './admin-audit';

/** Runs after the global caller guard: the caller is known; it must be marked `admin`. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(private readonly audit: AdminAudit) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context
      .switchToHttp()
      .getRequest<{ user?: Caller; id?: string; method?: string; url?: string }>();
    if (!request.user?.admin) {
      // A refusal is audited like any admin action: who tried what.
      this.audit.write(
        request,
        `${request.method ?? ''} ${pathOf(request.url)}`,
        undefined,
        'forbidden',
      );
      throw new ForbiddenError('Only admin callers may use /admin.');
    }
    return true;
  }
}

/** The path without the query string (which is caller text and may be long). */
function pathOf(url: string | undefined): string {
  const path = (url ?? '').split('?')[0];
  return path.length > 200 ? '(too long)' : path;
}
