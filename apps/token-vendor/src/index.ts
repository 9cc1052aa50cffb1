export {
  createTokenVendorApp,
  listenTokenVendor,
  BODY_LIMIT_BYTES,
  MAX_PARAM_LENGTH,
  HTTP_SERVER_TIMEOUTS,
  type HttpServerTimeouts,
  type TokenVendorAppOptions,
} from './create-app';
export { TokenVendorModule, type TokenVendorModuleOptions } from './token-vendor.module';
