import { Injectable } from '@nestjs/common';
import { Strategy as BearerStrategy, type VerifyFunction } from 'passport-http-bearer';
import { CallerRegistry, type Caller } from './caller-registry';

/** The parts of a request the bearer strategy reads. */
export interface BearerRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: unknown;
  body?: unknown;
}

/**
 * What a bearer turned out to be: a known key's caller, or a JWT (a workload identity) for
 * WorkloadCallerAuthenticator to verify. A JWT never goes through the key digests.
 */
export type BearerCredential =
  | { readonly kind: 'key'; readonly caller: Caller }
  | { readonly kind: 'jwt'; readonly token: string };

/** What one attempt may call back with: the passport strategy contract. */
interface StrategyAttempt {
  authenticate(request: BearerRequest): void;
  success(credential: BearerCredential): void;
  fail(): void;
  error(err: unknown): void;
}

/**
 * passport-http-bearer's strategy, run the way passport runs it (one attempt object per
 * request, inheriting from the strategy, with success/fail/error attached), without passport's
 * middleware around it: `passport.authenticate` plus @nestjs/passport's promise wrapping cost
 * a third of a cache hit (bench/results.md), for one strategy that answers synchronously.
 *
 * The strategy takes the key from `Authorization: Bearer <key>` (scheme case-insensitive,
 * RFC 7235); the guard has already refused keys in the query or body.
 */
@Injectable()
export class CallerBearerStrategy {
  /**
   * The one attempt object, reused: the strategy and its verify function answer synchronously,
   * so one request's attempt is over before the next begins, and a fresh attempt with three
   * closures per request would only be garbage.
   */
  private readonly attempt: StrategyAttempt;
  private found: BearerCredential | undefined;
  private failure: Error | undefined;

  constructor(registry: CallerRegistry) {
    const verify: VerifyFunction = (bearer, done) => {
      if (looksLikeJwt(bearer)) return done(null, { kind: 'jwt', token: bearer });
      const caller = registry.authenticate(bearer);
      done(null, caller === undefined ? false : { kind: 'key', caller });
    };
    this.attempt = Object.create(new BearerStrategy(verify)) as StrategyAttempt;
    this.attempt.success = (credential) => {
      this.found = credential;
    };
    this.attempt.fail = () => undefined;
    this.attempt.error = (err) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
    };
  }

  /** The caller of the request's key, or its JWT; undefined when there is no valid key. */
  authenticate(request: BearerRequest): BearerCredential | undefined {
    this.found = undefined;
    this.failure = undefined;
    this.attempt.authenticate(request);
    return this.settle();
  }

  /** What the attempt called back with (read in a method of its own: the callbacks set it). */
  private settle(): BearerCredential | undefined {
    const { found, failure } = this;
    this.found = undefined;
    this.failure = undefined;
    if (failure !== undefined) throw failure;
    return found;
  }
}

/**
 * A compact JWS: three parts, the first a JSON object (`eyJ` is `{"`). Caller keys from
 * `npm run caller-key` (`tvk_` + base64url) never have dots. Cheap on purpose (it runs on every
 * request): jose checks the parts themselves.
 */
export function looksLikeJwt(bearer: string): boolean {
  if (!bearer.startsWith('eyJ')) return false;
  const first = bearer.indexOf('.');
  const second = first === -1 ? -1 : bearer.indexOf('.', first + 1);
  return second !== -1 && bearer.indexOf('.', second + 1) === -1;
}
