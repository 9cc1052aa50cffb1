import { Global, Module } from '@nestjs/common';
import { UPSTREAM_OBSERVER } from '@app/upstream';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

/** Global: every library records into the one MetricsService; the upstream client reports through UPSTREAM_OBSERVER. */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [MetricsService, { provide: UPSTREAM_OBSERVER, useExisting: MetricsService }],
  exports: [MetricsService, UPSTREAM_OBSERVER],
})
export class MetricsModule {}
