import { SandboxInputError } from './sandbox-input-error';
import type { Fault, FaultMode } from './types';

export const FAULT_MODES: readonly FaultMode[] = [
  'none',
  'status_500',
  'status_503',
  'status_429',
  'timeout',
  'slow',
  'reset',
  'html',
  'truncated_json',
  'no_access_token',
  'wrong_token_type',
  'invalid_client',
  'invalid_scope',
  'expires_in',
];

/** Default delay of the 'slow' mode when the fault names none. */
export const DEFAULT_SLOW_DELAY_MS = 1000;
/** Default Retry-After of 'status_429' (a 429 without it would tell the client nothing). */
export const DEFAULT_429_RETRY_AFTER = 1;
/** Upper bound of delayMs: a longer "slow" is a 'timeout' and would only stall test runs. */
const MAX_DELAY_MS = 10 * 60 * 1000;

/**
 * Checks a fault from the control API or a test. Unknown fields are refused too, so a typo such
 * as `{"mode":"slow","delay":5000}` is an error rather than a fault with the default delay.
 */
export function parseFault(value: unknown): Fault {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SandboxInputError('fault must be a JSON object');
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!['mode', 'retryAfter', 'delayMs', 'expiresIn', 'count'].includes(key)) {
      throw new SandboxInputError(`fault has an unknown field: ${key}`);
    }
  }
  const { mode, retryAfter, delayMs, expiresIn, count } = record;
  if (typeof mode !== 'string' || !(FAULT_MODES as readonly string[]).includes(mode)) {
    throw new SandboxInputError(`fault.mode must be one of ${FAULT_MODES.join(', ')}`);
  }
  const fault: Fault = { mode: mode as FaultMode };
  if (retryAfter !== undefined) {
    if (!isNonNegativeInteger(retryAfter)) {
      throw new SandboxInputError('fault.retryAfter must be a non-negative integer (seconds)');
    }
    fault.retryAfter = retryAfter;
  }
  if (delayMs !== undefined) {
    if (!isNonNegativeInteger(delayMs) || delayMs > MAX_DELAY_MS) {
      throw new SandboxInputError(`fault.delayMs must be an integer from 0 to ${MAX_DELAY_MS}`);
    }
    fault.delayMs = delayMs;
  }
  if (count !== undefined) {
    if (!isNonNegativeInteger(count) || count === 0) {
      throw new SandboxInputError('fault.count must be a positive integer');
    }
    fault.count = count;
  }
  // expiresIn is deliberately almost anything (odd values are the point of the 'expires_in'
  // mode), but it has to fit in a JSON answer.
  if (expiresIn !== undefined) {
    try {
      JSON.stringify(expiresIn);
    } catch {
      throw new SandboxInputError('fault.expiresIn must be representable in JSON');
    }
    fault.expiresIn = expiresIn;
  }
  return fault;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The fault currently switched on, and how many more token requests it applies to. */
export class FaultInjector {
  private current: Fault | undefined;
  private remaining = Infinity;

  set(fault: Fault): void {
    const parsed = parseFault(fault);
    if (parsed.mode === 'none') {
      this.clear();
      return;
    }
    this.current = parsed;
    this.remaining = parsed.count ?? Infinity;
  }

  clear(): void {
    this.current = undefined;
    this.remaining = Infinity;
  }

  /** The fault for the token request now arriving, counting it against `count`. */
  take(): Fault | undefined {
    const fault = this.current;
    if (!fault) return undefined;
    this.remaining -= 1;
    if (this.remaining <= 0) this.clear();
    return fault;
  }

  /** The active fault, without consuming it (for the control API). */
  peek(): (Fault & { remaining?: number }) | undefined {
    if (!this.current) return undefined;
    return Number.isFinite(this.remaining)
      ? { ...this.current, remaining: this.remaining }
      : { ...this.current };
  }
}
