import { Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { ConfigService } from '@app/config';
import { loggerOptions } from './logger.options';

@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => loggerOptions(config.runtime.logLevel),
    }),
  ],
})
export class ObservabilityModule {}
