import { randomUUID } from 'node:crypto';
import { JwtSigner, type PublicJwk } from './jwt-signer';
import { SandboxInputError } from './sandbox-input-error';
import type { WorkloadTokenRequest } from './types';

/** Where the sandbox plays a cluster's ServiceAccount issuer (its `iss` is the URL of this path). */
export const WORKLOAD_ISSUER_PATH = '/workload-issuer';
/** The same layout as the Kubernetes API server's: discovery, then `/openid/v1/jwks`. */
export const WORKLOAD_DISCOVERY_PATH = `${WORKLOAD_ISSUER_PATH}/.well-known/openid-configuration`;
export const WORKLOAD_JWKS_PATH = `${WORKLOAD_ISSUER_PATH}/openid/v1/jwks`;
/** The audience a projected volume for token-vendor asks for (README "Callers without keys"). */
export const DEFAULT_WORKLOAD_AUDIENCE = 'token-vendor';
/** The kubelet's default projected token lifetime. */
export const DEFAULT_WORKLOAD_EXPIRES_IN = 3600;

const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * A workload identity issuer for the demo and the tests: it mints tokens shaped like
 * Kubernetes projected ServiceAccount tokens (RS256, `kid`, `iss`, `aud`, `sub`
 * `system:serviceaccount:<ns>:<sa>`, the `kubernetes.io` claim with pod and ServiceAccount)
 * and publishes its keys as a JWKS. Its key can be rotated (the old one stays published
 * unless told otherwise) and its JWKS endpoint taken down, so a verifier can be tested for both.
 */
export class WorkloadIssuer {
  /** Answers 503 on the JWKS (and discovery) while false. */
  available = true;
  /** Date.now() of every JWKS request served or refused. */
  readonly jwksRequests: number[] = [];

  /** The signing key first, then older keys still published. Made on first use: most sandboxes never need one. */
  private signers?: Promise<JwtSigner[]>;

  private keys(): Promise<JwtSigner[]> {
    this.signers ??= JwtSigner.create().then((signer) => [signer]);
    return this.signers;
  }

  async kid(): Promise<string> {
    return (await this.keys())[0].kid;
  }

  async jwks(): Promise<{ keys: PublicJwk[] }> {
    return { keys: (await this.keys()).map((s) => ({ ...s.publicJwk })) };
  }

  /** A new signing key; the previous ones stay published when `keepPrevious` (the default). */
  async rotateKey(keepPrevious = true): Promise<string> {
    const [previous, next] = await Promise.all([this.keys(), JwtSigner.create()]);
    this.signers = Promise.resolve(keepPrevious ? [next, ...previous] : [next]);
    return next.kid;
  }

  /** Signs a token for a workload; `issuer` is this issuer's `iss` unless the request overrides it. */
  async mint(request: WorkloadTokenRequest, issuer: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = integer(request.expiresIn ?? DEFAULT_WORKLOAD_EXPIRES_IN, 'expiresIn');
    const notBefore = now + integer(request.notBeforeIn ?? 0, 'notBeforeIn');
    const claims: Record<string, unknown> = {
      aud: request.audience ?? [DEFAULT_WORKLOAD_AUDIENCE],
      exp: now + expiresIn,
      iat: Math.min(now, notBefore),
      iss: request.issuer ?? issuer,
      jti: randomUUID(),
      nbf: notBefore,
    };
    if (request.namespace !== undefined || request.serviceAccount !== undefined) {
      const namespace = k8sName(request.namespace, 'namespace');
      const serviceAccount = k8sName(request.serviceAccount, 'serviceAccount');
      const pod = request.pod === null ? undefined : (request.pod ?? {});
      claims['kubernetes.io'] = {
        namespace,
        ...(pod !== undefined
          ? {
              node: { name: 'sandbox-node', uid: randomUUID() },
              pod: { name: pod.name ?? `${serviceAccount}-sandbox`, uid: pod.uid ?? randomUUID() },
            }
          : {}),
        serviceaccount: { name: serviceAccount, uid: randomUUID() },
      };
      claims.sub = request.subject ?? `system:serviceaccount:${namespace}:${serviceAccount}`;
    } else {
      if (typeof request.subject !== 'string' || request.subject.length === 0) {
        throw new SandboxInputError('give namespace and serviceAccount, or a subject');
      }
      claims.sub = request.subject;
    }
    return (await this.keys())[0].signPayload(claims);
  }
}

function integer(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > 10 * 365 * 86400) {
    throw new SandboxInputError(`${name} must be an integer number of seconds`);
  }
  return value;
}

function k8sName(value: unknown, name: string): string {
  if (typeof value !== 'string' || !K8S_NAME.test(value)) {
    throw new SandboxInputError(`${name} must be a Kubernetes name`);
  }
  return value;
}
