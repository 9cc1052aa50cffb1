/**
 * Every `error` code an error answer may carry (README "API"): the one list. errorBody() and
 * DomainError take only these, and ErrorBodyDto's OpenAPI enum is this list, so a code cannot
 * be answered without being in the document.
 */
export const ERROR_CODES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'unknown_client',
  'not_found',
  'too_many_requests',
  'upstream_rejected',
  'upstream_unavailable',
  'shutting_down',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
