export { tokenFingerprint, secretFingerprint } from './fingerprint';
export { loggerOptions, REDACTED_PATHS } from './logger.options';
export { ObservabilityModule } from './observability.module';
