import { Injectable } from '@nestjs/common';
import { Strategy as BearerStrategy, type VerifyFunction } from 'passport-http-bearer';
import { CallerRegistry, type Caller } from './caller-registry';

/** The parts of a request the bearer strategy reads. */
export interface BearerRequest {
  headers: Record<string, string | string[] | undefined>;
  query?: unknown;
  body?: unknown;
}

/** What one attempt may call back with: the passport strategy contract. */
interface StrategyAttempt {
  authenticate(request: BearerRequest): void;
  success(caller: Caller): void;
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
  private readonly strategy: BearerStrategy<VerifyFunction>;

  constructor(registry: CallerRegistry) {
    const verify: VerifyFunction = (key, done) => done(null, registry.authenticate(key) ?? false);
    this.strategy = new BearerStrategy(verify);
  }

  /** The caller the request's key belongs to; undefined when there is no valid key. */
  authenticate(request: BearerRequest): Caller | undefined {
    let caller: Caller | undefined;
    let failure: Error | undefined;
    const attempt = Object.create(this.strategy) as StrategyAttempt;
    attempt.success = (found) => {
      caller = found;
    };
    attempt.fail = () => undefined;
    attempt.error = (err) => {
      failure = err instanceof Error ? err : new Error(String(err));
    };
    attempt.authenticate(request);
    if (failure !== undefined) throw failure;
    return caller;
  }
}
