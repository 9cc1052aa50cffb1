import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { DEFAULT_429_RETRY_AFTER, DEFAULT_SLOW_DELAY_MS } from './fault-injection';
import { HTML_CONTENT_TYPE, JSON_CONTENT_TYPE, NO_STORE_HEADERS, send, sendJson } from './http-io';
import type { Fault } from './types';

/** Exact bodies of the faults, exported so tests assert against the same strings. */
export const FAULT_BODIES = {
  status_500: '<html>error</html>',
  status_503: '<html>Service Unavailable</html>',
  status_429: '<html>Too Many Requests</html>',
  html: '<html><body>Login</body></html>',
  truncated_json: '{"access_token":"eyJ',
} as const;

/**
 * What a fault did with the request:
 * - 'answered': the fault answered; `status` is what was sent (undefined for reset/timeout);
 * - 'continue': the normal flow must run (slow, after its delay; wrong_token_type and
 *   expires_in, which alter a successful answer);
 * - 'gone': the client or the sandbox went away while waiting.
 */
export type FaultResult =
  { kind: 'answered'; status?: number } | { kind: 'continue' } | { kind: 'gone' };

/**
 * Answers a token request the way a broken IdP or the gateway in front of it would. Modes that
 * end the request do so here; the others return 'continue'.
 */
export async function applyFault(
  fault: Fault,
  req: IncomingMessage,
  res: ServerResponse,
  expiresIn: number,
  sleep: (ms: number) => Promise<boolean>,
): Promise<FaultResult> {
  const answer = (
    status: number,
    contentType: string,
    body: string,
    headers: OutgoingHttpHeaders = {},
  ): FaultResult => {
    send(req, res, status, contentType, body, { ...NO_STORE_HEADERS, ...headers });
    return { kind: 'answered', status };
  };
  const retryAfter = (seconds: number | undefined): OutgoingHttpHeaders =>
    seconds === undefined ? {} : { 'Retry-After': String(seconds) };

  switch (fault.mode) {
    case 'none':
    case 'wrong_token_type':
    case 'expires_in':
      return { kind: 'continue' };
    case 'slow': {
      const waited = await sleep(fault.delayMs ?? DEFAULT_SLOW_DELAY_MS);
      return waited && !res.destroyed ? { kind: 'continue' } : { kind: 'gone' };
    }
    case 'timeout':
      // Keep the socket open and never write: the client's own timeout must fire.
      // close() destroys the socket.
      return { kind: 'answered' };
    case 'reset':
      // A TCP RST rather than a FIN: the client sees ECONNRESET, as behind a failing proxy.
      req.socket.resetAndDestroy();
      return { kind: 'answered' };
    case 'status_500':
      return answer(500, HTML_CONTENT_TYPE, FAULT_BODIES.status_500);
    case 'status_503':
      return answer(503, HTML_CONTENT_TYPE, FAULT_BODIES.status_503, retryAfter(fault.retryAfter));
    case 'status_429':
      return answer(
        429,
        HTML_CONTENT_TYPE,
        FAULT_BODIES.status_429,
        retryAfter(fault.retryAfter ?? DEFAULT_429_RETRY_AFTER),
      );
    case 'html':
      return answer(200, HTML_CONTENT_TYPE, FAULT_BODIES.html);
    case 'truncated_json':
      return answer(200, JSON_CONTENT_TYPE, FAULT_BODIES.truncated_json);
    case 'no_access_token':
      sendJson(req, res, 200, { expires_in: expiresIn, token_type: 'Bearer' }, NO_STORE_HEADERS);
      return { kind: 'answered', status: 200 };
    case 'invalid_client':
    case 'invalid_scope':
      sendJson(req, res, 400, { error: fault.mode }, NO_STORE_HEADERS);
      return { kind: 'answered', status: 400 };
  }
}
