import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Caller } from './caller-registry';

/** The authenticated caller that CallerAuthGuard put on the request. */
export const CurrentCaller = createParamDecorator(
  (_: unknown, context: ExecutionContext): Caller =>
    context.switchToHttp().getRequest<{ user: Caller }>().user,
);
