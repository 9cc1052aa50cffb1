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
    const safe: AuditLine = { ...line };
    for (const field in safe) {
      const value = safe[field];
      if (typeof value === 'string') safe[field] = auditText(value);
    }
    this.logger.info({ audit: true, ...safe });
  }
}

/** Longest text an audit field keeps: well above any valid client id (200) or request id (64). */
export const AUDIT_TEXT_MAX_LENGTH = 256;

/**
 * C0 and C1 controls, DEL, and the Unicode format characters that reorder or break lines when
 * a log is displayed (bidi overrides and isolates, line and paragraph separators).
 */
/* eslint-disable no-control-regex -- matching control characters is the point */
const CONTROL_CHARACTERS =
  /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

/**
 * Text from callers (client id, environment, request id, path) as an audit line may hold it
 * (README "Logs and metrics"): control characters stripped, at most AUDIT_TEXT_MAX_LENGTH
 * characters (a longer text ends with `…`). JSON escaping alone keeps a line one line, but not a
 * terminal or log viewer safe from escape sequences, nor the log small.
 */
export function auditText(value: string): string {
  CONTROL_CHARACTERS.lastIndex = 0;
  const clean = CONTROL_CHARACTERS.test(value) ? value.replace(CONTROL_CHARACTERS, '') : value;
  return clean.length > AUDIT_TEXT_MAX_LENGTH
    ? `${clean.slice(0, AUDIT_TEXT_MAX_LENGTH - 1)}…`
    : clean;
}
