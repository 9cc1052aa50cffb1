export {
  AuditLog,
  AUDIT_LOGGER,
  AUDIT_TEXT_MAX_LENGTH,
  auditText,
  type AuditLine,
} from './audit-log';
export {
  DisclosureLog,
  DISCLOSURE_SUMMARY_INTERVAL_MS,
  MAX_SOURCES_PER_SUMMARY,
  MAX_TRACKED_DISCLOSURES,
  type Disclosure,
} from './disclosure-log';
