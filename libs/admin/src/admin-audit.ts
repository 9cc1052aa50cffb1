import { Injectable } from '@nestjs/common';
import { AuditLog } from '@app/audit';
import type { Caller } from '@app/auth';
import { DomainError, reasonOf } from '@app/errors';

/** What an admin handler reads from the request: the guard's caller and the request id. */
export interface AdminRequest {
  user?: Caller;
  id?: string;
}

/** Caller-sent text in an audit line is capped, so a long id cannot flood the log. */
const MAX_TARGET_LENGTH = 200;

/**
 * The admin audit line: who (caller), what (action, target), and what came of it (outcome),
 * refusals included. Never a token or secret: targets are client keys, outcomes codes.
 */
@Injectable()
export class AdminAudit {
  constructor(private readonly audit: AuditLog) {}

  async run<T>(
    request: AdminRequest,
    action: string,
    target: string | undefined,
    work: () => T | Promise<T>,
  ): Promise<T> {
    try {
      const result = await work();
      this.write(request, action, target, 'done');
      return result;
    } catch (e) {
      this.write(request, action, target, e instanceof DomainError ? e.code : 'error', reasonOf(e));
      throw e;
    }
  }

  /** `reason`: why an action failed, as on token request lines (reasonOf). */
  write(
    request: AdminRequest,
    action: string,
    target: string | undefined,
    outcome: string,
    reason?: string,
  ): void {
    this.audit.write({
      msg: 'admin action',
      requestId: request.id,
      caller: request.user?.name ?? null,
      action,
      target:
        target === undefined
          ? undefined
          : target.length > MAX_TARGET_LENGTH
            ? '(too long)'
            : target,
      outcome,
      ...(reason !== undefined ? { reason } : {}),
    });
  }
}
