import { DynamicModule, Global, Module } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { ConfigService } from '@app/config';
import { AUDIT_LOGGER, AuditLog, DisclosureLog } from '@app/audit';
import { createAuditLogger, createRootLogger } from './logger.options';

/** The application's root pino logger: Nest's lines, access lines and audit lines. */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

/**
 * Logging: the root logger and the audit log, global so every library can write audit lines.
 * The app hands the root logger to Nest (PinoNestLogger) and to Fastify's access-log hook.
 */
@Global()
@Module({})
export class ObservabilityModule {
  /** `logStream`: where log lines go (stdout when absent); tests capture them. */
  static forRoot(options: { logStream?: DestinationStream } = {}): DynamicModule {
    return {
      module: ObservabilityModule,
      providers: [
        {
          provide: ROOT_LOGGER,
          inject: [ConfigService],
          useFactory: (config: ConfigService) =>
            createRootLogger(config.runtime.logLevel, options.logStream),
        },
        { provide: AUDIT_LOGGER, inject: [ROOT_LOGGER], useFactory: createAuditLogger },
        AuditLog,
        DisclosureLog,
      ],
      exports: [ROOT_LOGGER, AuditLog, DisclosureLog],
    };
  }
}
