export { TokensModule } from './tokens.module';
export { TokenVendingService, MAX_MIN_TTL_SECONDS, MIN_REFETCH_INTERVAL_MS, type TokenQuery } from './token-vending.service';
export { TokenCache } from './token-cache';
export { TokenFetcher } from './token-fetcher';
export { ClientResolver } from './client-resolver';
export { SingleFlight } from './single-flight';
export { toVendedToken, type VendedToken } from './vended-token';
export { VendedTokenDto } from './vended-token.dto';
