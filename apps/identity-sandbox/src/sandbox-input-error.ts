/**
 * Thrown when a fault, a client or a setting handed to the sandbox is invalid. The control API
 * turns it into 400 invalid_request; the programmatic API lets it propagate so a test with a
 * typo fails loudly instead of silently running without the fault it asked for.
 */
export class SandboxInputError extends Error {
  override readonly name = 'SandboxInputError';
}
