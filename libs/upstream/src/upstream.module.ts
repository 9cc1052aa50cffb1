import { Module } from '@nestjs/common';
import { IdpDiscovery } from './idp-discovery';
import { OAuthClient } from './oauth.client';

/**
 * Provides OAuthClient. CLOCK (and, optionally, UPSTREAM_OBSERVER) must come from global
 * modules of the application: this module deliberately imports neither, so tests and apps
 * choose the clock and the metrics.
 */
@Module({
  providers: [OAuthClient, IdpDiscovery],
  exports: [OAuthClient, IdpDiscovery],
})
export class UpstreamModule {}
