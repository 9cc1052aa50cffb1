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
  MAX_KEY_DIGEST_FILE_BYTES,
} from './caller-key-files.reader';
export {
  readClientSecrets,
  readClientSecret,
  readChangedFileSecret,
} from './client-secrets.reader';
export {
  loadRuntimeSettings,
  parseEncryptionKeys,
  DEFAULT_KEY_PREFIX,
} from './runtime-settings.loader';
export {
  CLIENT_ID,
  ENVIRONMENT_NAME,
  DEFAULT_MIN_TTL_SECONDS,
  DEFAULT_REFRESH_RATIO,
  DEFAULT_TIMEOUT_MS,
} from './service-config.schema';
// The chart's values.schema.json is generated from it (scripts/chart-values-schema.ts).
export { serviceConfigSchema } from './service-config.schema';
