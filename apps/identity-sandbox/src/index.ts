/**
 * The identity sandbox: a CAS-compatible (IdentityServer-style) OAuth2 client-credentials IdP
 * for the demo, docker-compose and tests. Other code imports only from here
 * (`@app/identity-sandbox`).
 */
export { startIdentitySandbox, DEFAULT_AUDIENCE, DEFAULT_EXPIRES_IN } from './sandbox-server';
export { DEMO_CLIENTS, DEMO_SCOPES } from './demo-clients';
export { basicAuthorization } from './client-authentication';
export { FAULT_BODIES } from './fault-responses';
export { FAULT_MODES } from './fault-injection';
export { SandboxInputError } from './sandbox-input-error';
export {
  DEFAULT_WORKLOAD_AUDIENCE,
  WORKLOAD_ISSUER_PATH,
  WORKLOAD_JWKS_PATH,
} from './workload-issuer';
export type {
  Fault,
  FaultMode,
  RunningSandbox,
  SandboxAuthMethod,
  SandboxClient,
  SandboxLogEntry,
  SandboxOptions,
  SandboxRequestRecord,
  SandboxStats,
  SandboxWorkloadIssuer,
  WorkloadTokenRequest,
} from './types';
