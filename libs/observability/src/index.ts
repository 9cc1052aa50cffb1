export { tokenFingerprint, secretFingerprint, secretFingerprintKey } from './fingerprint';
export {
  requestIdOf,
  REDACTED_PATHS,
  AUDIT_REDACTED_PATHS,
  createRootLogger,
  createAuditLogger,
} from './logger.options';
export { ObservabilityModule, ROOT_LOGGER } from './observability.module';
export {
  MetricsService,
  TOKEN_REQUEST_BUCKETS,
  type HeldTokenSample,
  type TokenRequestOutcome,
  type AuthFailureReason,
} from './metrics.service';
export { MetricsServer } from './metrics.server';
export { RequestTracing } from './request-tracing';
export {
  isTokenRequestRoute,
  requestMetricsHook,
  tokenRequestDurationHook,
} from './request-metrics';
export { TelemetryModule } from './telemetry.module';
export { buildVersion } from './build-info';
export { PinoNestLogger } from './pino-nest.logger';
export { accessLogHook } from './access-log';
