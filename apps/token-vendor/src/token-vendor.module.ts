import { DynamicModule, Module } from '@nestjs/common';
import type { Writable } from 'node:stream';
import { APP_FILTER } from '@nestjs/core';
import { AdminModule } from '@app/admin';
import { AuthModule } from '@app/auth';
import { ClockModule, type Clock } from '@app/clock';
import { ConfigModule, type LoadedConfiguration } from '@app/config';
import { DomainExceptionFilter } from '@app/errors';
import { HealthModule } from '@app/health';
import { ObservabilityModule, TelemetryModule } from '@app/observability';
import { PeriodicModule } from '@app/periodic';
import { RotationModule } from '@app/rotation';
import { TokensModule } from '@app/tokens';
import { ScheduleModule } from '@nestjs/schedule';

export interface TokenVendorModuleOptions {
  configuration: LoadedConfiguration;
  /** Tests hand in a controllable clock; production uses the system clock. */
  clock?: Clock;
  /** Where log lines go (stdout when absent); tests capture them. */
  logStream?: Writable;
  /** Proactive refresh (default on); focused tests of the request path turn it off. */
  refresh?: boolean;
}

/** The root module: wires the libraries; holds no behaviour of its own. */
@Module({})
export class TokenVendorModule {
  static forRoot(options: TokenVendorModuleOptions): DynamicModule {
    // Built once and handed to the modules that use it: one instance of each (README "How the
    // pieces fit").
    const tokens = TokensModule.forRoot({ proactiveRefresh: options.refresh });
    const rotation = RotationModule.forRoot(tokens);
    return {
      module: TokenVendorModule,
      imports: [
        ConfigModule.forRoot(options.configuration),
        ClockModule.forRoot(options.clock),
        // PeriodicTasks makes every periodic job; the background ones are registered in
        // ScheduleModule's registry, which stops them when shutdown begins (README "How the pieces fit").
        ScheduleModule.forRoot(),
        PeriodicModule,
        TelemetryModule,
        ObservabilityModule.forRoot({ logStream: options.logStream }),
        AuthModule,
        tokens,
        // Secret rotation and reload run whether or not the admin API is used.
        rotation,
        HealthModule,
        AdminModule.forRoot(tokens, rotation),
      ],
      providers: [{ provide: APP_FILTER, useClass: DomainExceptionFilter }],
    };
  }
}
