export { RotationModule, type RotationModuleImport } from './rotation.module';
export { SecretRotationService } from './secret-rotation.service';
export { ConfigReloader } from './config-reloader';
export {
  CertificateExpiryMonitor,
  CERTIFICATE_EXPIRY_WARNING_MS,
  type CertificateWarning,
} from './certificate-expiry.monitor';
