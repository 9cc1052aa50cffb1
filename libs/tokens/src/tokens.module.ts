import { Module } from '@nestjs/common';
import { UpstreamModule } from '@app/upstream';
import { ClientResolver } from './client-resolver';
import { TokenCache } from './token-cache';
import { TokenFetcher } from './token-fetcher';
import { TokenVendingService } from './token-vending.service';
import { TokensController } from './tokens.controller';

@Module({
  imports: [UpstreamModule],
  controllers: [TokensController],
  providers: [ClientResolver, TokenCache, TokenFetcher, TokenVendingService],
  exports: [TokenCache, TokenFetcher, TokenVendingService, ClientResolver],
})
export class TokensModule {}
