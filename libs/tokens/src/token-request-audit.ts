import type { AuditLog } from '@app/audit';
import type { Caller } from '@app/auth';
import { DomainError, InvalidRequestError } from '@app/errors';

/** A client id longer than any valid one (CLIENT_ID) is not echoed: attacker-controlled text. */
const MAX_AUDITED_CLIENT_ID_LENGTH = 200;

/** One audit line about a caller's request for a client's token. */
export interface TokenRequestAudit {
  msg: 'token request' | 'token rejection report';
  requestId: string | undefined;
  caller: Caller;
  clientId: string;
  environment: string | undefined;
  outcome: string;
}

/**
 * Writes the audit line of a `GET /tokens` or a rejection report: both name the caller the same
 * way, with a JWT caller's workload (namespace/serviceAccount or sub, pod) beside its name
 * (README "Callers without keys").
 */
export function writeTokenRequestAudit(
  audit: AuditLog,
  line: TokenRequestAudit,
  extra: Record<string, string | number | undefined>,
): void {
  audit.write({
    msg: line.msg,
    requestId: line.requestId,
    caller: line.caller.name,
    ...line.caller.presented,
    clientId: line.clientId.length > MAX_AUDITED_CLIENT_ID_LENGTH ? '(too long)' : line.clientId,
    environment: line.environment,
    outcome: line.outcome,
    ...extra,
  });
}

/** The audit outcome and metric label of a failed request: the domain error's code, else `error`. */
export function outcomeOf(e: unknown): string {
  return e instanceof DomainError ? e.code : 'error';
}

/** A query parameter given at most once: Fastify hands a repeated one as an array (400). */
export function optionalQueryString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidRequestError(`${name} may be given once.`);
  return value;
}
