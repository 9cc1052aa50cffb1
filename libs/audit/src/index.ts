export {
  AuditLog,
  AUDIT_LOGGER,
  AUDIT_TEXT_MAX_LENGTH,
  auditText,
  type AuditLine,
} from './audit-log';
