import { DynamicModule, Global, Module } from '@nestjs/common';
import { REFRESH_ENABLED } from './refresh.scheduler';

/**
 * Whether this process refreshes tokens before they expire (on unless the builder of the app
 * turns it off: focused tests of the request path). Handed in by whoever builds the app, like
 * the clock, so it is the one global piece here: TokensModule itself is imported explicitly by
 * the modules that use it.
 */
@Global()
@Module({})
export class RefreshSwitchModule {
  static forRoot(enabled = true): DynamicModule {
    return {
      module: RefreshSwitchModule,
      providers: [{ provide: REFRESH_ENABLED, useValue: enabled }],
      exports: [REFRESH_ENABLED],
    };
  }
}
