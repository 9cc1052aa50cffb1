import type { SandboxClient } from './types';

/** Scopes of the demo clients: the ones the CAS quick start asks for. */
export const DEMO_SCOPES = ['deals-read', 'permissions-read'];

/**
 * Throwaway credentials for the demo, docker-compose and tests (never real ones).
 * The second secret holds ':' and '%' on purpose: it only survives client_secret_basic when the
 * client form-urlencodes id and secret before base64, as RFC 6749 §2.3.1 requires.
 */
export const DEMO_CLIENTS: readonly SandboxClient[] = Object.freeze([
  { clientId: 'demo.client', secret: 'demo-secret-not-real', scopes: [...DEMO_SCOPES] },
  { clientId: 'demo-basic.client', secret: 'demo:basic%secret-not-real', scopes: [...DEMO_SCOPES] },
]);
