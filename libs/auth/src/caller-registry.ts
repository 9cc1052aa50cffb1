import { Injectable } from '@nestjs/common';
import { hash, timingSafeEqual } from 'node:crypto';
import { ConfigService, type CallerConfig } from '@app/config';

/** What a JWT caller presented, for the audit lines of its requests (verified claims only). */
export interface PresentedWorkload {
  /** `namespace/serviceAccount` for a Kubernetes token, else its `sub`. */
  readonly workload: string;
  /** The pod a pod-bound ServiceAccount token names. */
  readonly pod?: string;
  readonly podUid?: string;
}

/** An authenticated caller: its configuration, and for a JWT caller what its token named. */
export type Caller = CallerConfig & { readonly presented?: PresentedWorkload };

/**
 * Finds the caller a bearer key belongs to. Keys are never stored: the config holds their
 * SHA-256 digests, and the comparison is constant-time and visits every digest, so timing
 * reveals neither which digest matched nor how much of it. Needs no Redis.
 */
@Injectable()
export class CallerRegistry {
  constructor(private readonly config: ConfigService) {}

  authenticate(key: string): Caller | undefined {
    if (key.length === 0) return undefined;
    // One-shot hash: no Hash object per request (this runs on every key caller's request).
    const digest = hash('sha256', key, 'buffer');
    let found: Caller | undefined;
    for (const caller of this.config.service.callers) {
      for (const known of caller.keyDigests) {
        if (timingSafeEqual(digest, known) && found === undefined) found = caller;
      }
    }
    return found;
  }
}
