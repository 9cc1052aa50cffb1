import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';

/** The audit log's pino logger (a child of the root logger: see createAuditLogger). */
export const AUDIT_LOGGER = Symbol('AUDIT_LOGGER');

/**
 * One audit line: who asked (`caller`, null when no key matched), for what, and what came of
 * it. Built field by field from non-secret values; never pass a request or an error object.
 */
export interface AuditLine {
  msg: string;
  requestId: string | undefined;
  caller: string | null;
  outcome: string;
  [field: string]: string | number | boolean | null | undefined | readonly string[];
}

/**
 * The audit log: one JSON line per token request and per refused request, written through
 * pino directly (not Nest's Logger facade) because it is on every request's path.
 */
@Injectable()
export class AuditLog {
  constructor(@Inject(AUDIT_LOGGER) private readonly logger: Logger) {}

  write(line: AuditLine): void {
    this.logger.info({ audit: true, ...line });
  }
}
