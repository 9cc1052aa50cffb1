export { tokenFingerprint, secretFingerprint } from './fingerprint';
export { loggerOptions, requestIdOf, REDACTED_PATHS } from './logger.options';
export { ObservabilityModule } from './observability.module';
export { MetricsService, type HeldTokenSample } from './metrics.service';
export { MetricsModule } from './metrics.module';
