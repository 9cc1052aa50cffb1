import { DynamicModule, Global, Module } from '@nestjs/common';
import { CLOCK, SystemClock, type Clock } from './clock';
import { CLOCK_SKEW, ClockSkew } from './clock-skew';

/** Provides CLOCK everywhere (the system clock, or the one a test hands in) and CLOCK_SKEW. */
@Global()
@Module({})
export class ClockModule {
  static forRoot(clock: Clock = SystemClock.fromEnvironment()): DynamicModule {
    return {
      module: ClockModule,
      providers: [
        { provide: CLOCK, useValue: clock },
        { provide: CLOCK_SKEW, useValue: new ClockSkew() },
      ],
      exports: [CLOCK, CLOCK_SKEW],
    };
  }
}
