import { Module } from '@nestjs/common';
import { OAuthClient } from './oauth.client';

/**
 * Provides OAuthClient. CLOCK (and, optionally, UPSTREAM_OBSERVER) must come from global
 * modules of the application: this module deliberately imports neither, so tests and apps
 * choose the clock and the metrics.
 */
@Module({
  providers: [OAuthClient],
  exports: [OAuthClient],
})
export class UpstreamModule {}
