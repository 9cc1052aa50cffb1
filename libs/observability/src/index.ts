export { tokenFingerprint, secretFingerprint, secretFingerprintKey } from './fingerprint';
export { requestIdOf, createRootLogger, createAuditLogger } from './logger.options';
export { ObservabilityModule, ROOT_LOGGER } from './observability.module';
export { MetricsService, TOKEN_REQUEST_BUCKETS } from './metrics.service';
export { MetricsServer } from './metrics.server';
export { RequestTracing } from './request-tracing';
export {
  isTokenRequestRoute,
  requestMetricsHook,
  tokenRequestDurationHook,
} from './request-metrics';
export { TelemetryModule } from './telemetry.module';
export { IdpReachability, type IdpState } from './idp-reachability';
export { PinoNestLogger } from './pino-nest.logger';
export { accessLogHook } from './access-log';
