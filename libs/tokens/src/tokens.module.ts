import { DynamicModule, Module } from '@nestjs/common';
import { UpstreamModule } from '@app/upstream';
import { ClientResolver } from './client-resolver';
import { REFRESH_ENABLED, RefreshScheduler } from './refresh.scheduler';
import { SecretCandidates } from './secret-candidates';
import { TokenCache } from './token-cache';
import { TokenFetcher } from './token-fetcher';
import { TokenRejectionService } from './token-rejection.service';
import { TokenSource } from './token-source';
import { TokenVendingService } from './token-vending.service';
import { TokensController } from './tokens.controller';

@Module({
  imports: [UpstreamModule],
  controllers: [TokensController],
  providers: [
    ClientResolver,
    TokenCache,
    TokenFetcher,
    TokenSource,
    TokenVendingService,
    TokenRejectionService,
    RefreshScheduler,
    SecretCandidates,
  ],
  exports: [
    TokenCache,
    TokenFetcher,
    TokenSource,
    TokenVendingService,
    ClientResolver,
    RefreshScheduler,
    SecretCandidates,
  ],
})
export class TokensModule {
  /** `refresh: false` turns proactive refresh off (focused tests of the request path). */
  static forRoot(options: { refresh?: boolean } = {}): DynamicModule {
    return {
      module: TokensModule,
      // Rotation and the admin API build on the fetcher, cache and scheduler of this one instance.
      global: true,
      providers: [{ provide: REFRESH_ENABLED, useValue: options.refresh ?? true }],
    };
  }
}
