import { SandboxInputError } from './sandbox-input-error';

/** About 10 years: past this a lifetime is a bug, and `exp` would leave the safe-integer range sooner or later. */
const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;

/**
 * Token lifetime in whole seconds, at least 1. Zero, negative or fractional values are what the
 * 'expires_in' fault is for; the sandbox's own tokens are always valid JWTs.
 */
export function validateExpiresIn(value: unknown, where = 'expiresIn'): number {
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 1 ||
    value > MAX_EXPIRES_IN
  ) {
    throw new SandboxInputError(`${where} must be an integer from 1 to ${MAX_EXPIRES_IN}`);
  }
  return value;
}

export function validatePort(value: unknown, where = 'port'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    throw new SandboxInputError(`${where} must be an integer from 0 to 65535`);
  }
  return value;
}
