export { RotationModule, type RotationModuleImport } from './rotation.module';
export {
  SecretRotationService,
  CANDIDATE_RETRY_BASE_MS,
  CANDIDATE_RETRY_CAP_MS,
  type RotationStatus,
} from './secret-rotation.service';
export { SecretFileWatcher, SECRET_POLL_INTERVAL_MS } from './secret-file.watcher';
export { ConfigReloader, type FleetReload, type ReloadResult } from './config-reloader';
