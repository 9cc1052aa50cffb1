import type { ErrorCode } from './error-codes';

/** The JSON body of every error answer (README "API"): `{"error": "<code>", "message": "<text>"}`. */
export interface ErrorBody {
  error: ErrorCode;
  message: string;
}

/** The one builder of an error answer's body, so every path answers in the same shape. */
export function errorBody(error: ErrorCode, message: string): ErrorBody {
  return { error, message };
}
