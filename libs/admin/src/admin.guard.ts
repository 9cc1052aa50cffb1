import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Caller } from '@app/auth';
import { ForbiddenError } from '@app/errors';

/** Runs after the global caller guard: the caller is known; it must be marked `admin`. */
@Injectable()
export class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const caller = context.switchToHttp().getRequest<{ user?: Caller }>().user;
    if (!caller?.admin) throw new ForbiddenError('Only admin callers may use /admin.');
    return true;
  }
}
