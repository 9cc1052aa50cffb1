export { ConfigError } from './config.error';
export type * from './config.types';
export { ConfigService, type ConfigSnapshot } from './config.service';
export {
  ConfigModule,
  loadConfiguration,
  loadSnapshot,
  type LoadedConfiguration,
} from './config.module';
export { parseServiceConfig, loadServiceConfigFile } from './service-config.loader';
export {
  readCallerKeyFiles,
  readKeyDigestFile,
  callersWithoutCredentials,
  MAX_KEY_DIGEST_FILE_BYTES,
} from './caller-key-files.reader';
export {
  readClientSecrets,
  readClientSecret,
  readChangedFileSecret,
  maxCredentialBytes,
  readChangedTlsCredential,
  MAX_KEY_FILE_BYTES,
} from './client-secrets.reader';
export { splitTlsCredential, tlsCredentialOf } from './tls-credential';
export { parsePrivateKey } from './private-key';
export { requestShapeOf, type RequestShape } from './request-shape';
export {
  loadRuntimeSettings,
  parseEncryptionKeys,
  DEFAULT_KEY_PREFIX,
  DEFAULT_METRICS_PORT,
} from './runtime-settings.loader';
export {
  CLIENT_ID,
  ENVIRONMENT_NAME,
  isKeySourceUrl,
  DEFAULT_MIN_TTL_SECONDS,
  DEFAULT_REFRESH_RATIO,
  DEFAULT_TIMEOUT_MS,
  RESERVED_TOKEN_PARAMS,
  isLoopbackHost,
  insecureHttp,
  TLS_AUTH_METHODS,
} from './service-config.schema';
// The chart's values.schema.json is generated from it (scripts/chart-values-schema.ts).
export { serviceConfigSchema } from './service-config.schema';
