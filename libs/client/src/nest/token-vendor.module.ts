import {
  Module,
  type DynamicModule,
  type FactoryProvider,
  type ModuleMetadata,
} from '@nestjs/common';
import { createTokenVendorClient, type TokenVendorClientOptions } from '../token-vendor-client';

/** Inject the client with `@Inject(TOKEN_VENDOR_CLIENT) client: TokenVendorClient`. */
export const TOKEN_VENDOR_CLIENT = Symbol('TOKEN_VENDOR_CLIENT');

export interface TokenVendorModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  inject?: FactoryProvider['inject'];
  useFactory: (...args: never[]) => TokenVendorClientOptions | Promise<TokenVendorClientOptions>;
  /** Provide the client to every module (default false). */
  global?: boolean;
}

/**
 * The SDK for NestJS callers: one provider, the client, nothing else. `@nestjs/common` is an
 * optional peer dependency used only by this entry point (`@token-vendor/client/nest`).
 */
@Module({})
export class TokenVendorModule {
  static forRoot(options: TokenVendorClientOptions & { global?: boolean }): DynamicModule {
    const { global, ...clientOptions } = options;
    return {
      module: TokenVendorModule,
      global: global ?? false,
      providers: [
        { provide: TOKEN_VENDOR_CLIENT, useValue: createTokenVendorClient(clientOptions) },
      ],
      exports: [TOKEN_VENDOR_CLIENT],
    };
  }

  static forRootAsync(options: TokenVendorModuleAsyncOptions): DynamicModule {
    return {
      module: TokenVendorModule,
      global: options.global ?? false,
      imports: options.imports ?? [],
      providers: [
        {
          provide: TOKEN_VENDOR_CLIENT,
          inject: options.inject ?? [],
          useFactory: async (...args: never[]) =>
            createTokenVendorClient(await options.useFactory(...args)),
        },
      ],
      exports: [TOKEN_VENDOR_CLIENT],
    };
  }
}
