// The test harness's door (README "How the pieces fit"): specs and suite helpers import from here.
export { TestClock, type TestClockOptions } from './clock';
export {
  certificatePathOf,
  secretPathOf,
  sha256Hex,
  testEncryptionKeys,
  writeServiceConfig,
  type ServiceConfigSpec,
  type TestCaller,
  type TestClient,
  type TestEnvironment,
} from './config';
export { ConnectProxy } from './connect-proxy';
export {
  CALLER_KEY,
  ENVIRONMENT,
  jsonOrRaw,
  sandboxClients,
  type Fleet,
  type FleetOptions,
  type TapRecord,
  type TokenAnswer,
} from './fleet';
export {
  closeServer,
  httpRequest,
  listenOnLoopback,
  type HttpRequestOptions,
  type SimpleResponse,
} from './http';
export { K8sSecretVolume } from './k8s-secret-volume';
export { killAllReplicas, type Replica } from './process';
export {
  askRedis,
  freePort,
  requireTestRedisUrl,
  startRedisServer,
  type ThrowawayRedis,
} from './redis-server';
export * from './redis-topologies';
export {
  CapturedLogs,
  startService,
  type InProcessOptions,
  type InProcessService,
  type ProcessOptions,
} from './service';
export {
  signingCertificate,
  type SigningCertificate,
  type SigningCertificateOptions,
} from './self-signed-certificate';
export * from './test-pki';
export { sleep, waitFor } from './wait';
