export { ConfigError } from './config.error';
export type {
  AclEntry,
  AuthMethod,
  CallerConfig,
  CallerIssuerConfig,
  ClientConfig,
  EncryptionKey,
  EnvironmentConfig,
  RedisConnectionOptions,
  RedisSettings,
  RuntimeSettings,
  ServiceConfig,
  SigningAlg,
} from './config.types';
export { ConfigService, type ConfigSnapshot } from './config.service';
export {
  ConfigModule,
  loadConfiguration,
  loadSnapshot,
  type LoadedConfiguration,
} from './config.module';
export { parseServiceConfig } from './service-config.loader';
export { readCallerKeyFiles, callersWithoutCredentials } from './caller-key-files.reader';
export {
  readClientSecret,
  readChangedFileSecret,
  maxCredentialBytes,
  readChangedTlsCredential,
  readChangedSigningCredential,
} from './client-secrets.reader';
export { splitTlsCredential } from './tls-credential';
export { credentialCertificate, splitSigningCredential } from './signing-credential';
export { parsePrivateKey } from './private-key';
export { requestShapeOf } from './request-shape';
export {
  REDIS_TLS_PAIR_FIELDS,
  loadRuntimeSettings,
  parseEncryptionKeys,
} from './runtime-settings.loader';
export { CLIENT_ID, ENVIRONMENT_NAME, isKeySourceUrl, insecureHttp } from './service-config.schema';
// The chart's values.schema.json is generated from it (scripts/chart-values-schema.ts).
export { serviceConfigSchema } from './service-config.schema';
export { readCaBundle } from './ca-bundle';
export { CaBundleFile, type CaBundleCheck } from './ca-bundle-file';
export { TlsPairFiles } from './tls-pair-files';
export { fileIdentity } from './file-identity';
