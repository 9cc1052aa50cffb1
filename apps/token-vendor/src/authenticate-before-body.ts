import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CallerAuthGuard } from '@app/auth';
import { DomainExceptionFilter } from '@app/errors';

/** Stands for "a route that takes a body": none of them is @Public(). */
class BodyBearingRoute {
  handle(this: void): void {}
}

/**
 * A Fastify `preParsing` hook of the routes that take a body (attached to each by create-app.ts
 * as it is registered, see `takesBody`): a request that carries a body is authenticated before a byte of
 * the body is read (README "HTTP server"). Without it, Fastify reads and parses the body before
 * Nest's guard runs, so anyone could make the service buffer bodies (or wait for bodies that
 * never come) without a key. The guard itself runs (the same checks, audit lines and
 * failed-auth limit as for every request); its refusal is answered by the one exception filter,
 * with `Connection: close` since the unread body is still on the connection. Requests without
 * a body, and bodies to routes that do not exist (their 404: no route, no hook), are left to
 * the router.
 */
export function authenticateBeforeBodyHook(
  app: NestFastifyApplication,
): (request: FastifyRequest, reply: FastifyReply, payload: unknown) => Promise<unknown> {
  const guard = app.get(CallerAuthGuard, { strict: false });
  const filter = new DomainExceptionFilter();
  const handler = BodyBearingRoute.prototype.handle;
  return async (request, reply, payload) => {
    if (!hasBody(request)) return payload;
    const context = new ExecutionContextHost([request, reply], BodyBearingRoute, handler);
    try {
      // Awaited whether the guard answers synchronously or not.
      if (await Promise.resolve(guard.canActivate(context))) return payload;
    } catch (e) {
      void reply.header('Connection', 'close');
      filter.catch(e, context);
      return reply;
    }
    return payload;
  };
}

/**
 * Methods whose bodies Fastify reads and parses: the hook is attached to their routes only.
 * Fastify never reads a GET, HEAD or TRACE body, so those routes need no hook.
 */
const BODYLESS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'TRACE']);

/** Whether a route (one method or several) may have its body read by Fastify. */
export function takesBody(method: string | readonly string[]): boolean {
  const methods = typeof method === 'string' ? [method] : method;
  return methods.some((m) => !BODYLESS_METHODS.has(m.toUpperCase()));
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  );
}
