import { DynamicModule, Module, RequestMethod } from '@nestjs/common';
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
          useFactory: (config: ConfigService) => ({
            ...loggerOptions(config.runtime.logLevel, options.logStream),
            // The token hot path skips the request-logging middleware: it writes no access line
            // (its audit line carries the request id), and the middleware is a large share of
            // the cost of a cache hit (see bench/results.md).
            exclude: [{ method: RequestMethod.GET, path: 'tokens/*clientId' }],
          }),
        }),
      ],
    };
  }
}
