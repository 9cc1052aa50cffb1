import { DynamicModule, Module } from '@nestjs/common';
import type { Writable } from 'node:stream';
import { LoggerModule } from 'nestjs-pino';
import { ConfigService } from '@app/config';
import { loggerOptions } from './logger.options';

@Module({})
export class ObservabilityModule {
  /** `logStream`: where log lines go (stdout when absent); tests capture them. */
  static forRoot(options: { logStream?: Writable } = {}): DynamicModule {
    return {
      module: ObservabilityModule,
      imports: [
        LoggerModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService) =>
            loggerOptions(config.runtime.logLevel, options.logStream),
        }),
      ],
    };
  }
}
