import { DynamicModule, Module } from '@nestjs/common';
import { TokenStoreModule } from '@app/token-store';
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

export interface TokensModuleOptions {
  /**
   * Proactive refresh and start-up warming (default on). Handed in by whoever builds the app,
   * like the clock: focused tests of the request path turn it off.
   */
  proactiveRefresh?: boolean;
}

/** The module `TokensModule.forRoot` builds; rotation and the admin API import this one value. */
export type TokensModuleImport = DynamicModule & { module: typeof TokensModule };

/**
 * Getting tokens: vending, the one token source, proactive refresh, rejection reports. Not
 * global (README "How the pieces fit"): the root module builds it once with `forRoot` and hands
 * that same value to rotation and the admin API, which import it; Nest keys a dynamic module by
 * reference, so the three imports are one instance (one replica copy, one scheduler).
 */
@Module({})
export class TokensModule {
  static forRoot(options: TokensModuleOptions = {}): TokensModuleImport {
    return {
      module: TokensModule,
      imports: [UpstreamModule, TokenStoreModule],
      controllers: [TokensController],
      providers: [
        { provide: REFRESH_ENABLED, useValue: options.proactiveRefresh ?? true },
        ClientResolver,
        TokenCache,
        TokenFetcher,
        TokenSource,
        TokenVendingService,
        TokenRejectionService,
        RefreshScheduler,
        SecretCandidates,
      ],
      // What rotation and the admin API use; the rest is this module's own.
      exports: [TokenSource, RefreshScheduler, SecretCandidates],
    };
  }
}
