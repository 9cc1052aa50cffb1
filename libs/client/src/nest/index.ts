export {
  TokenVendorModule,
  TOKEN_VENDOR_CLIENT,
  type TokenVendorModuleAsyncOptions,
} from './token-vendor.module';
