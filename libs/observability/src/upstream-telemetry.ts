import { Injectable } from '@nestjs/common';
import type {
  AttemptTrace,
  UpstreamAttempt,
  UpstreamAttemptStart,
  UpstreamObserver,
} from '@app/upstream';
import { MetricsService } from './metrics.service';
import { RequestTracing } from './request-tracing';

/** The IdP client's one observer: attempts counted and timed, and traced. */
@Injectable()
export class UpstreamTelemetry implements UpstreamObserver {
  constructor(
    private readonly metrics: MetricsService,
    private readonly tracing: RequestTracing,
  ) {}

  onAttempt(event: UpstreamAttempt): void {
    this.metrics.onAttempt(event);
  }

  beginAttempt(where: UpstreamAttemptStart): AttemptTrace | undefined {
    return this.tracing.beginAttempt(where);
  }
}
