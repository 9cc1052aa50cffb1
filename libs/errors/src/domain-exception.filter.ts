import {
  ArgumentsHost,
  Catch,
  ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from './domain-errors';
import { errorBody } from './error-body';
import type { ErrorCode } from './error-codes';

interface ErrorAnswer {
  status: number;
  error: ErrorCode;
  message: string;
  retryAfterSeconds?: number;
  wwwAuthenticate?: string;
}

/** Framework errors (404 route, 413 body, bad JSON) keep their status with the error JSON body. */
const HTTP_STATUS_CODES: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'not_found',
  413: 'invalid_request',
  415: 'invalid_request',
  429: 'too_many_requests',
};

/**
 * The one place where errors become HTTP answers. Domain errors map to the README's error
 * table ("API"); anything unknown becomes a generic 500 carrying only the request id, never
 * internals.
 */
@Catch()
export class DomainExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const answer = this.toAnswer(exception, String(request.id ?? ''));

    if (answer.status === 401) {
      reply.header('WWW-Authenticate', answer.wwwAuthenticate ?? 'Bearer realm="token-vendor"');
    }
    if (answer.retryAfterSeconds !== undefined) {
      reply.header('Retry-After', String(Math.max(1, Math.ceil(answer.retryAfterSeconds))));
    }
    reply
      .header('Cache-Control', 'no-store')
      .header('Pragma', 'no-cache')
      .status(answer.status)
      .send(errorBody(answer.error, answer.message));
  }

  private toAnswer(exception: unknown, requestId: string): ErrorAnswer {
    if (exception instanceof DomainError) {
      return {
        status: exception.status,
        error: exception.code,
        message: exception.message,
        retryAfterSeconds: exception.retryAfterSeconds,
        wwwAuthenticate: exception.wwwAuthenticate,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = HTTP_STATUS_CODES[status];
      if (code) return { status, error: code, message: this.safeHttpMessage(exception, status) };
    }
    if (isFastifyClientError(exception)) {
      const status = exception.statusCode;
      return {
        status,
        error: HTTP_STATUS_CODES[status] ?? 'invalid_request',
        message: status === 413 ? 'The request is too large.' : 'The request is malformed.',
      };
    }
    this.logger.error(
      { err: exception instanceof Error ? { name: exception.name } : undefined, requestId },
      'unhandled error',
    );
    return {
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      error: 'internal_error',
      message: `Internal error (request id ${requestId}).`,
    };
  }

  private safeHttpMessage(exception: HttpException, status: number): string {
    if (status === 404 || status === 405) return 'No such endpoint.';
    if (status === 413) return 'The request is too large.';
    const response = exception.getResponse();
    const message =
      typeof response === 'object' && response !== null && 'message' in response
        ? response.message
        : exception.message;
    return Array.isArray(message) ? message.join('; ') : String(message);
  }
}

function isFastifyClientError(e: unknown): e is { statusCode: number } {
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}
