import {
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { PeriodicTasks, type PeriodicTask } from '@app/periodic';
import { WorkloadCallerAuthenticator } from './workload-caller.authenticator';

/**
 * How often the caller issuers' keys are checked for age: a key the issuer withdraws stops being
 * accepted at most JWKS_MAX_AGE_MS plus this after the last fetch (README "Callers without keys").
 */
export const CALLER_KEYS_CHECK_INTERVAL_MS = 30_000;

/** The periodic job that re-fetches stale caller issuer keys (WorkloadCallerAuthenticator). */
@Injectable()
export class CallerIssuerKeysCheck implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: PeriodicTask;

  constructor(authenticator: WorkloadCallerAuthenticator, tasks: PeriodicTasks) {
    this.task = tasks.create('caller issuer keys check', CALLER_KEYS_CHECK_INTERVAL_MS, () =>
      authenticator.refreshStaleIssuerKeys(),
    );
  }

  onApplicationBootstrap(): void {
    this.task.start();
  }

  onApplicationShutdown(): void {
    this.task.stop();
  }
}
