/** What one attempt against the token endpoint came to; also a ready-made metric label. */
export type AttemptOutcome =
  'ok' | 'rejected' | 'bad_status' | 'bad_answer' | 'timeout' | 'network';

export interface UpstreamAttempt {
  environment: string;
  clientId: string;
  /** 1-based attempt number within one fetchToken call. */
  attempt: number;
  outcome: AttemptOutcome;
  /** The HTTP status, when an answer arrived at all. */
  status?: number;
  durationMs: number;
}

/**
 * Hook for metrics and tracing, so they can be added without touching the client. Called
 * synchronously once per attempt; it must not throw (if it does, the error is logged and
 * ignored) and it never sees the secret, the token or the IdP's body.
 */
export interface UpstreamObserver {
  onAttempt(event: UpstreamAttempt): void;
  /**
   * Called right before each attempt is sent (tracing): the headers it returns are added to
   * the request (W3C `traceparent`, `tracestate`), and `end` is called with the attempt's event.
   */
  beginAttempt?(where: UpstreamAttemptStart): AttemptTrace | undefined;
}

/** An attempt about to be sent. */
export interface UpstreamAttemptStart {
  environment: string;
  clientId: string;
  attempt: number;
}

/** What an observer attaches to one attempt: headers to send, and its end. */
export interface AttemptTrace {
  headers: Record<string, string>;
  end(event: UpstreamAttempt): void;
}

/**
 * Optional provider token. OAuthClient resolves it in UpstreamModule's scope, so provide it
 * from a @Global() module (like CLOCK), e.g. the observability module.
 */
export const UPSTREAM_OBSERVER = Symbol('UPSTREAM_OBSERVER');
