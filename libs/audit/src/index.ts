export { AuditLog, AUDIT_LOGGER, AUDIT_TEXT_MAX_LENGTH } from './audit-log';
export { DisclosureLog } from './disclosure-log';
