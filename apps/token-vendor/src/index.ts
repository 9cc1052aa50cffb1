export { createTokenVendorApp, BODY_LIMIT_BYTES, MAX_PARAM_LENGTH } from './create-app';
export { TokenVendorModule, type TokenVendorModuleOptions } from './token-vendor.module';
