/** The JSON body of every error answer (README "API"): `{"error": "<code>", "message": "<text>"}`. */
export interface ErrorBody {
  error: string;
  message: string;
}

/** The one builder of an error answer's body, so every path answers in the same shape. */
export function errorBody(error: string, message: string): ErrorBody {
  return { error, message };
}
