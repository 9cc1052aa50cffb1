import type { UpstreamRejection } from '@app/errors';
import { parseJsonObject } from './json-object';
import { isRetryableStatus } from './retry-policy';

/** The RFC 6749 §5.2 error codes (plus access_denied, §4.1.2.1) that mean "you, not me". */
const REJECTIONS: ReadonlySet<string> = new Set<UpstreamRejection>([
  'invalid_client',
  'unauthorized_client',
  'invalid_scope',
  'invalid_grant',
  'invalid_request',
  'unsupported_grant_type',
  'access_denied',
]);

/** What a non-200 answer from the token endpoint means for us. */
export type ErrorAnswer =
  /** The IdP refused our request; retrying the same request cannot help. */
  | { kind: 'rejected'; rejection: UpstreamRejection }
  /** The IdP is overloaded or broken (429, 5xx): worth another attempt. */
  | { kind: 'retryable' }
  /** Anything else (3xx, 403, 404, other 4xx): a misconfiguration; retrying hot will not fix it. */
  | { kind: 'unexpected' };

/**
 * Classifies a non-200 answer. Only the OAuth `error` code is read from the body, and only
 * when it is one of the codes above, so nothing else the IdP wrote can reach a log line or
 * an error message.
 */
export function classifyErrorAnswer(status: number, body: string): ErrorAnswer {
  if (status === 400 || status === 401) {
    const code = parseJsonObject(body)?.error;
    if (typeof code === 'string' && REJECTIONS.has(code)) {
      return { kind: 'rejected', rejection: code as UpstreamRejection };
    }
    // RFC 6749 §5.2: a 401 from the token endpoint is a failed client authentication,
    // whatever the body says (some IdPs send none, or a WWW-Authenticate header only).
    if (status === 401) return { kind: 'rejected', rejection: 'invalid_client' };
  }
  return isRetryableStatus(status) ? { kind: 'retryable' } : { kind: 'unexpected' };
}
