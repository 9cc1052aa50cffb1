export { tokenFingerprint, secretFingerprint } from './fingerprint';
export {
  requestIdOf,
  REDACTED_PATHS,
  AUDIT_REDACTED_PATHS,
  createRootLogger,
  createAuditLogger,
} from './logger.options';
export { ObservabilityModule, ROOT_LOGGER } from './observability.module';
export { MetricsService, type HeldTokenSample } from './metrics.service';
export { MetricsModule } from './metrics.module';
export { PinoNestLogger } from './pino-nest.logger';
export { accessLogHook } from './access-log';
