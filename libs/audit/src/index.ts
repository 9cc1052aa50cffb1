export { AuditLog, AUDIT_LOGGER, type AuditLine } from './audit-log';
