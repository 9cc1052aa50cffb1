import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { hash } from 'node:crypto';
import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { CLOCK, type Clock } from '@app/clock';
import { ConfigService, type CallerConfig, type CallerIssuerConfig } from '@app/config';
import { CallerIssuerUnavailableError } from '@app/errors';
import { IdpDispatchers } from '@app/upstream';
import type { Caller } from './caller-registry';
import { IssuerKeySet, IssuerKeysUnavailable } from './issuer-key-set';
import { VerifiedTokenCache } from './verified-token.cache';

/** Asymmetric algorithms only: never `none`, never HMAC (whose key would be the public key). */
export const CALLER_TOKEN_ALGORITHMS = ['RS256', 'PS256', 'ES256'];
/** Leeway for `exp`, `nbf` and `iat` against clock skew between the issuer and us. */
export const CALLER_TOKEN_LEEWAY_SECONDS = 30;
/** Longest workload label written to the audit log (the claims are verified, but unbounded). */
const MAX_LABEL_LENGTH = 256;

/** Which check refused a caller token: written to the audit line, never the token. */
export type CallerTokenRefusal =
  | 'malformed'
  | 'issuer'
  | 'algorithm'
  | 'unknown_key'
  | 'signature'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'audience'
  | 'claims'
  | 'no_caller';

export type WorkloadAuthentication =
  | { readonly caller: Caller }
  | { readonly refused: CallerTokenRefusal; readonly workload?: string };

/** Who a verified token says it is. */
interface VerifiedWorkload {
  /** The `callerIssuers` name. */
  readonly issuer: string;
  readonly subject: string;
  readonly kubernetes?: {
    readonly namespace: string;
    readonly serviceAccount: string;
    readonly pod?: string;
    readonly podUid?: string;
  };
  /** `namespace/serviceAccount` or the subject: how the audit log names the workload. */
  readonly label: string;
}

interface VerifiedEntry {
  readonly workload: VerifiedWorkload;
  /** The keys that verified it, and their generation then: a withdrawn key voids the entry. */
  readonly keys: IssuerKeySet;
  readonly generation: number;
  /** The caller it resolved to, against `resolvedFrom` (re-resolved when the callers change). */
  caller?: Caller;
  resolvedFrom?: readonly CallerConfig[];
}

/**
 * Authenticates callers that present a workload JWT instead of a key (README "Callers without
 * keys"): the token is verified offline with jose against its issuer's JWKS (signature, `iss`,
 * `aud`, `exp`, `nbf`, `iat`, allowed algorithms), then matched to the caller that names its
 * identity (Kubernetes namespace + ServiceAccount, or `sub`). A verified token is remembered by
 * its SHA-256 until its `exp`, so a repeated request answers synchronously without an RSA check.
 */
@Injectable()
export class WorkloadCallerAuthenticator implements OnApplicationShutdown {
  private readonly verified = new VerifiedTokenCache<VerifiedEntry>();
  /** The IdP calls' pools: JWKS and discovery fetches honour HTTPS_PROXY / NO_PROXY too. */
  private readonly dispatchers = new IdpDispatchers();
  private issuers = new Map<string, IssuerKeySet>();
  private issuersFrom?: readonly CallerIssuerConfig[];
  private callerIndex = new Map<string, CallerConfig>();
  private callersFrom?: readonly CallerConfig[];

  constructor(
    private readonly config: ConfigService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.dispatchers.close();
  }

  /** Synchronous on a cache hit; a Promise when the token must be verified. */
  authenticate(token: string): WorkloadAuthentication | Promise<WorkloadAuthentication> {
    this.followConfiguration();
    // One-shot hash: no Hash object per request (this runs on every JWT caller's request).
    const digest = hash('sha256', token, 'base64url');
    const hit = this.verified.get(digest, this.clock.now());
    if (hit !== undefined) {
      if (hit.generation === hit.keys.generation) return this.resolve(hit);
      // Verified under keys the issuer has since withdrawn some of: verify it again, and keep
      // nothing of it unless that succeeds.
      this.verified.delete(digest);
    }
    return this.verify(token, digest);
  }

  /**
   * Re-fetches each issuer's keys once they are JWKS_MAX_AGE_MS old (CallerIssuerKeysCheck runs
   * it): tokens answered from the verified-token cache never make jose refetch, and a key the
   * issuer withdrew must stop vouching for them (README "Callers without keys").
   */
  async refreshStaleIssuerKeys(): Promise<void> {
    this.followConfiguration();
    await Promise.all([...this.issuers.values()].map((keys) => keys.refreshIfStale()));
  }

  private async verify(token: string, digest: string): Promise<WorkloadAuthentication> {
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return { refused: 'malformed' };
    }
    const keys = iss === undefined ? undefined : this.issuers.get(iss);
    if (keys === undefined) return { refused: 'issuer' };
    const now = this.clock.now();
    // The generation before the check: a JWKS fetched while the signature is being checked (by
    // another request or the periodic check) may withdraw the key this token is checked with,
    // and an entry stamped after it would never be checked again. Stamped before, a token whose
    // own lookup fetched the new keys is checked once more on its next use, which is cheap.
    const generation = keys.generation;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.lookup, {
        issuer: keys.config.issuer,
        audience: keys.config.audience,
        algorithms: CALLER_TOKEN_ALGORITHMS,
        clockTolerance: CALLER_TOKEN_LEEWAY_SECONDS,
        currentDate: new Date(now),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (e) {
      if (e instanceof IssuerKeysUnavailable) {
        throw new CallerIssuerUnavailableError(keys.config.name);
      }
      return { refused: refusalOf(e) };
    }
    if (
      typeof payload.iat === 'number' &&
      payload.iat * 1000 > now + CALLER_TOKEN_LEEWAY_SECONDS * 1000
    ) {
      return { refused: 'issued_in_future' };
    }
    const workload = workloadOf(keys.config.name, payload);
    if (workload === undefined) return { refused: 'claims' };
    const entry: VerifiedEntry = { workload, keys, generation };
    // Remembered even if no caller names it yet: the callers are matched on every use.
    this.verified.set(digest, entry, (payload.exp ?? 0) * 1000);
    return this.resolve(entry);
  }

  private resolve(entry: VerifiedEntry): WorkloadAuthentication {
    if (entry.resolvedFrom !== this.callersFrom) {
      entry.caller = this.callerFor(entry.workload);
      entry.resolvedFrom = this.callersFrom;
    }
    return entry.caller !== undefined
      ? { caller: entry.caller }
      : { refused: 'no_caller', workload: entry.workload.label };
  }

  private callerFor(workload: VerifiedWorkload): Caller | undefined {
    const k8s = workload.kubernetes;
    const config =
      (k8s && this.callerIndex.get(kubernetesKey(workload.issuer, k8s))) ??
      this.callerIndex.get(subjectKey(workload.issuer, workload.subject));
    if (config === undefined) return undefined;
    return {
      ...config,
      presented: {
        workload: workload.label,
        ...(k8s?.pod !== undefined ? { pod: k8s.pod } : {}),
        ...(k8s?.podUid !== undefined ? { podUid: k8s.podUid } : {}),
      },
    };
  }

  /**
   * Rebuilds the issuers and the caller index when a reload replaced them (compared by
   * identity: a snapshot is never mutated). An issuer whose settings did not change keeps its
   * fetched keys; verified tokens are forgotten when any issuer's settings changed (another
   * audience, say), kept when a reload left the issuers as they were.
   */
  private followConfiguration(): void {
    const service = this.config.service;
    if (service.callerIssuers !== this.issuersFrom) {
      const next = new Map<string, IssuerKeySet>();
      let changed = this.issuers.size !== service.callerIssuers.length;
      for (const issuer of service.callerIssuers) {
        const known = this.issuers.get(issuer.issuer);
        const same = known !== undefined && sameIssuer(known.config, issuer);
        if (!same) changed = true;
        next.set(
          issuer.issuer,
          same ? known : new IssuerKeySet(issuer, () => this.clock.now(), this.dispatchers.for()),
        );
      }
      this.issuers = next;
      this.issuersFrom = service.callerIssuers;
      if (changed) this.verified.clear();
    }
    if (service.callers !== this.callersFrom) {
      const index = new Map<string, CallerConfig>();
      for (const caller of service.callers) {
        const w = caller.workload;
        if (w === undefined) continue;
        index.set(
          w.kind === 'kubernetes' ? kubernetesKey(w.issuer, w) : subjectKey(w.issuer, w.subject),
          caller,
        );
      }
      this.callerIndex = index;
      this.callersFrom = service.callers;
    }
  }
}

function kubernetesKey(
  issuer: string,
  k8s: { readonly namespace: string; readonly serviceAccount: string },
): string {
  return `kubernetes\n${issuer}\n${k8s.namespace}\n${k8s.serviceAccount}`;
}

function subjectKey(issuer: string, subject: string): string {
  return `jwt\n${issuer}\n${subject}`;
}

function sameIssuer(a: CallerIssuerConfig, b: CallerIssuerConfig): boolean {
  return (
    a.name === b.name &&
    a.issuer === b.issuer &&
    a.jwksUri === b.jwksUri &&
    a.audience === b.audience &&
    a.bearerTokenFile === b.bearerTokenFile
  );
}

/**
 * The identity in verified claims. A Kubernetes token's `kubernetes.io` claim names namespace,
 * ServiceAccount and (for pod-bound tokens) the pod; its `sub` must agree with them.
 */
function workloadOf(issuer: string, payload: JWTPayload): VerifiedWorkload | undefined {
  const subject = payload.sub;
  if (typeof subject !== 'string' || subject.length === 0) return undefined;
  const claim = payload['kubernetes.io'];
  if (claim === undefined) return { issuer, subject, label: subject.slice(0, MAX_LABEL_LENGTH) };
  const k8s = claim as {
    namespace?: unknown;
    serviceaccount?: { name?: unknown };
    pod?: { name?: unknown; uid?: unknown };
  };
  const namespace = k8s.namespace;
  const serviceAccount = k8s.serviceaccount?.name;
  if (typeof namespace !== 'string' || typeof serviceAccount !== 'string') return undefined;
  if (subject !== `system:serviceaccount:${namespace}:${serviceAccount}`) return undefined;
  const pod = typeof k8s.pod?.name === 'string' ? k8s.pod.name : undefined;
  const podUid = typeof k8s.pod?.uid === 'string' ? k8s.pod.uid : undefined;
  return {
    issuer,
    subject,
    kubernetes: { namespace, serviceAccount, pod, podUid },
    label: `${namespace}/${serviceAccount}`.slice(0, MAX_LABEL_LENGTH),
  };
}

/** jose's error codes, mapped to the check that failed. */
function refusalOf(error: unknown): CallerTokenRefusal {
  const { code, claim } = error as { code?: string; claim?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return 'not_yet_valid';
      if (claim === 'aud') return 'audience';
      if (claim === 'iss') return 'issuer';
      if (claim === 'iat') return 'issued_in_future';
      return 'claims';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'algorithm';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_key';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    default:
      return 'malformed';
  }
}
