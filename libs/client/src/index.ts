export {
  createTokenVendorClient,
  DEFAULT_REFRESH_MARGIN_SECONDS,
  DEFAULT_TIMEOUT_MS,
  type GetTokenOptions,
  type TokenVendorClient,
  type TokenVendorClientOptions,
  type VendedToken,
} from './token-vendor-client';
export {
  BadAnswerError,
  CallerUnauthorizedError,
  ClientConfigError,
  InvalidRequestError,
  TokenVendorError,
  TooManyRequestsError,
  UnknownClientError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
  VendorUnreachableError,
} from './errors';
export type { Clock } from './clock';
