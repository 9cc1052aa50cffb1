import { Module } from '@nestjs/common';
import { UpstreamModule } from '@app/upstream';
import { ClientResolver } from './client-resolver';
import { RefreshScheduler } from './refresh.scheduler';
import { SecretCandidates } from './secret-candidates';
import { TokenCache } from './token-cache';
import { TokenFetcher } from './token-fetcher';
import { TokenRejectionService } from './token-rejection.service';
import { TokenSource } from './token-source';
import { TokenVendingService } from './token-vending.service';
import { TokensController } from './tokens.controller';

/**
 * Getting tokens: vending, the one token source, proactive refresh, rejection reports. Not
 * global: rotation and the admin API import it (one instance: Nest shares a static module).
 */
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
  // What rotation and the admin API use; the rest is this module's own.
  exports: [TokenSource, RefreshScheduler, SecretCandidates],
})
export class TokensModule {}
