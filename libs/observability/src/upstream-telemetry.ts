import { Injectable } from '@nestjs/common';
import type {
  AttemptTrace,
  UpstreamAttempt,
  UpstreamAttemptStart,
  UpstreamObserver,
} from '@app/upstream';
import { IdpReachability } from './idp-reachability';
import { MetricsService } from './metrics.service';
import { RequestTracing } from './request-tracing';

/**
 * The IdP client's one observer: attempts counted and timed, traced, and the last outcome per
 * environment kept for the readiness body.
 */
@Injectable()
export class UpstreamTelemetry implements UpstreamObserver {
  constructor(
    private readonly metrics: MetricsService,
    private readonly tracing: RequestTracing,
    private readonly reachability: IdpReachability,
  ) {}

  onAttempt(event: UpstreamAttempt): void {
    this.metrics.onAttempt(event);
    this.reachability.record(event);
  }

  beginAttempt(where: UpstreamAttemptStart): AttemptTrace | undefined {
    return this.tracing.beginAttempt(where);
  }
}
