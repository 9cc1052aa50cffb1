import { Global, Module } from '@nestjs/common';
import { UPSTREAM_OBSERVER } from '@app/upstream';
import { IdpReachability } from './idp-reachability';
import { MetricsServer } from './metrics.server';
import { MetricsService } from './metrics.service';
import { RequestTracing } from './request-tracing';
import { UpstreamTelemetry } from './upstream-telemetry';

/**
 * Metrics and tracing. Global, as cross-cutting infrastructure (README "How the pieces fit"):
 * every library records into the one MetricsService; the upstream client reports (and gets its
 * trace headers) through the optional UPSTREAM_OBSERVER, and libs/upstream cannot import this
 * module (it imports UPSTREAM_OBSERVER from there), so a forgotten import would silently drop the
 * IdP metrics. A static module: one instance, one registry.
 */
@Global()
@Module({
  providers: [
    MetricsService,
    MetricsServer,
    RequestTracing,
    UpstreamTelemetry,
    IdpReachability,
    { provide: UPSTREAM_OBSERVER, useExisting: UpstreamTelemetry },
  ],
  exports: [MetricsService, MetricsServer, RequestTracing, IdpReachability, UPSTREAM_OBSERVER],
})
export class TelemetryModule {}
