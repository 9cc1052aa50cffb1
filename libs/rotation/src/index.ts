export { RotationModule, type RotationModuleImport } from './rotation.module';
export { SecretRotationService } from './secret-rotation.service';
export { ConfigReloader } from './config-reloader';
