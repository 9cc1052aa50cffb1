import { createHash } from 'node:crypto';
import { fileCredential, fixedCredential, type CallerCredential } from './caller-credential';
import { systemClock, type Clock } from './clock';
import {
  BadAnswerError,
  CallerUnauthorizedError,
  ClientConfigError,
  InvalidRequestError,
  TokenVendorError,
  TooManyRequestsError,
  UnknownClientError,
  UpstreamRejectedError,
  UpstreamUnavailableError,
  VendorUnreachableError,
} from './errors';
import { DEFAULT_MAX_ATTEMPTS, parseRetryAfterMs, retryDelayMs } from './retry-policy';

/** Per attempt, connection and answer included. */
export const DEFAULT_TIMEOUT_MS = 5_000;
/** A held token is asked for again this long before it expires (see holdMarginMs). */
export const DEFAULT_REFRESH_MARGIN_SECONDS = 60;
/** The service answers bodies of a few hundred bytes; anything far larger is not its answer. */
const MAX_ANSWER_BYTES = 256 * 1024;

export interface TokenVendorClientOptions {
  /** The service's URL, e.g. `http://token-vendor.token-vendor.svc:3000`. */
  baseUrl: string;
  /** Exactly one of callerKey, callerKeyFile, callerTokenFile. */
  callerKey?: string;
  /** A file holding the caller key (a mounted Secret); re-read when it changes. */
  callerKeyFile?: string;
  /**
   * A projected Kubernetes ServiceAccount token (audience `token-vendor`): its content is sent
   * as the bearer and re-read when the kubelet rotates it.
   */
  callerTokenFile?: string;
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number;
  /** Ask for a new token this long before the held one expires (default 60 s; see the README). */
  refreshMarginSeconds?: number;
  /** Attempts per request when the service answers 500, 503 or 504 or cannot be reached (default 3). */
  maxAttempts?: number;
  /** Time, for tests (default: the system clock). */
  clock?: Clock;
  /** Randomness of the backoff jitter, for tests (default Math.random). */
  random?: () => number;
  /** The HTTP transport (default: the global fetch); also used by fetchWithToken. */
  fetch?: typeof globalThis.fetch;
}

export interface GetTokenOptions {
  /** Needed when the client id exists in several environments this caller may use. */
  environment?: string;
  /** Seconds the token must still have left when handed out (whole seconds, 0–86400). */
  minTtl?: number;
}

/** The body of `GET /tokens/:clientId`. */
export interface VendedToken {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in: number;
  readonly expires_at: string;
  readonly scope?: string;
  readonly client_id: string;
  readonly environment: string;
}

export interface TokenVendorClient {
  /**
   * A token of `clientId`, from memory while it has more than the margin (and `minTtl`) left,
   * else from the service; concurrent calls for one (client, environment) share one request.
   */
  getToken(clientId: string, options?: GetTokenOptions): Promise<VendedToken>;
  /**
   * `fetch` with `Authorization: Bearer <token of clientId>`. When the downstream answers 401,
   * the token is reported to the service as rejected and the request is sent once more with the
   * token the service answers; a second 401 is returned as it is.
   */
  fetchWithToken(
    clientId: string,
    input: string | URL | Request,
    init?: RequestInit,
    options?: GetTokenOptions,
  ): Promise<Response>;
  /**
   * Tells the service that a downstream refused `accessToken`
   * (`POST /tokens/:clientId/rejections`); resolves to the token to use instead, which is held.
   */
  reportRejection(
    clientId: string,
    accessToken: string,
    options?: Pick<GetTokenOptions, 'environment'>,
  ): Promise<VendedToken>;
}

interface HeldToken {
  token: VendedToken;
  /** Local-clock expiry: when the request was sent + expires_in (immune to clock skew). */
  expiresAtMs: number;
  marginMs: number;
}

interface Flight {
  promise: Promise<VendedToken>;
  minTtl: number;
}

export function createTokenVendorClient(options: TokenVendorClientOptions): TokenVendorClient {
  return new VendorClient(options);
}

class VendorClient implements TokenVendorClient {
  private readonly base: URL;
  private readonly credential: CallerCredential;
  private readonly timeoutMs: number;
  private readonly marginMs: number;
  private readonly maxAttempts: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly transport: typeof globalThis.fetch;
  /** Keyed by `environment/clientId` (environment empty when the caller left it out). */
  private readonly held = new Map<string, HeldToken>();
  private readonly flights = new Map<string, Flight>();
  private readonly rejections = new Map<string, Promise<VendedToken>>();

  constructor(options: TokenVendorClientOptions) {
    this.base = parseBaseUrl(options.baseUrl);
    this.credential = credentialOf(options);
    this.timeoutMs = positive(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.marginMs =
      nonNegative(
        options.refreshMarginSeconds,
        DEFAULT_REFRESH_MARGIN_SECONDS,
        'refreshMarginSeconds',
      ) * 1000;
    this.maxAttempts = positive(options.maxAttempts, DEFAULT_MAX_ATTEMPTS, 'maxAttempts');
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.transport = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  getToken(clientId: string, options?: GetTokenOptions): Promise<VendedToken> {
    const minTtl = options?.minTtl ?? 0;
    const key = keyOf(clientId, options?.environment);
    const held = this.held.get(key);
    // The hot path: one Map lookup and one clock read, no request.
    if (held !== undefined && this.isUsable(held, minTtl)) return Promise.resolve(held.token);
    return this.fetchShared(key, clientId, options?.environment, minTtl);
  }

  async fetchWithToken(
    clientId: string,
    input: string | URL | Request,
    init?: RequestInit,
    options?: GetTokenOptions,
  ): Promise<Response> {
    // Built once so a body can be sent twice (the retry gets the clone's twin).
    const request = new Request(input, init);
    const token = await this.getToken(clientId, options);
    const first = await this.transport(withBearer(request.clone(), token.access_token));
    if (first.status !== 401) return first;
    await first.body?.cancel().catch(() => undefined);
    const next = await this.reportRejection(clientId, token.access_token, options);
    // Exactly one retry: a second 401 goes back to the caller, never into a loop.
    return this.transport(withBearer(request, next.access_token));
  }

  reportRejection(
    clientId: string,
    accessToken: string,
    options?: Pick<GetTokenOptions, 'environment'>,
  ): Promise<VendedToken> {
    const environment = options?.environment;
    const key = keyOf(clientId, environment);
    const digest = createHash('sha256').update(accessToken, 'utf8').digest('hex');
    // Many requests refused at once with the same token make one report.
    const reportKey = `${key}#${digest}`;
    const running = this.rejections.get(reportKey);
    if (running) return running;
    if (this.held.get(key)?.token.access_token === accessToken) this.held.delete(key);
    const url = this.tokenUrl(clientId, environment, undefined, '/rejections');
    const report = this.send(url, 'POST', JSON.stringify({ token_sha256: digest }))
      .then(({ token, sentAt }) => this.hold(key, token, sentAt))
      .finally(() => this.rejections.delete(reportKey));
    this.rejections.set(reportKey, report);
    return report;
  }

  /** Usable while more than the margin, and at least `minTtl`, is left. */
  private isUsable(held: HeldToken, minTtlSeconds: number): boolean {
    const margin = minTtlSeconds * 1000 > held.marginMs ? minTtlSeconds * 1000 : held.marginMs;
    return this.clock.now() < held.expiresAtMs - margin;
  }

  private fetchShared(
    key: string,
    clientId: string,
    environment: string | undefined,
    minTtl: number,
  ): Promise<VendedToken> {
    const flying = this.flights.get(key);
    // A request already asking for at least this much life answers this call too.
    if (flying !== undefined && flying.minTtl >= minTtl) return flying.promise;
    const url = this.tokenUrl(clientId, environment, minTtl > 0 ? minTtl : undefined, '');
    const promise = this.send(url, 'GET', undefined)
      .then(({ token, sentAt }) => this.hold(key, token, sentAt))
      .finally(() => {
        if (this.flights.get(key)?.promise === promise) this.flights.delete(key);
      });
    this.flights.set(key, { promise, minTtl });
    return promise;
  }

  private hold(key: string, token: VendedToken, sentAt: number): VendedToken {
    const lifeMs = token.expires_in * 1000;
    this.held.set(key, {
      token,
      expiresAtMs: sentAt + lifeMs,
      marginMs: holdMarginMs(this.marginMs, lifeMs),
    });
    return token;
  }

  private tokenUrl(
    clientId: string,
    environment: string | undefined,
    minTtl: number | undefined,
    suffix: string,
  ): URL {
    const url = new URL(`tokens/${encodeURIComponent(clientId)}${suffix}`, this.base);
    if (environment !== undefined) url.searchParams.set('environment', environment);
    if (minTtl !== undefined) url.searchParams.set('minTtl', String(minTtl));
    return url;
  }

  /**
   * One call to the service with retries: network errors, timeouts and 500, 503 and 504 answers
   * are retried with jittered backoff (honouring `Retry-After`); a 401 is retried once if
   * the credential file changed meanwhile; every other answer is final.
   */
  private async send(
    url: URL,
    method: 'GET' | 'POST',
    body: string | undefined,
  ): Promise<{ token: VendedToken; sentAt: number }> {
    let credentialReloaded = false;
    for (let attempt = 1; ; attempt++) {
      const bearer = await this.credential.current();
      const sentAt = this.clock.now();
      let status: number;
      let text: string;
      let retryAfterMs: number | undefined;
      try {
        const signal = AbortSignal.timeout(this.timeoutMs);
        const headers: Record<string, string> = {
          accept: 'application/json',
          authorization: `Bearer ${bearer}`,
        };
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await this.transport(url, { method, headers, body, signal, redirect: 'error' });
        status = res.status;
        retryAfterMs = parseRetryAfterMs(res.headers.get('retry-after'), this.clock.now());
        text = await readLimited(res);
      } catch (e) {
        const delay =
          attempt < this.maxAttempts ? retryDelayMs(attempt, undefined, this.random) : undefined;
        if (delay === undefined) {
          throw new VendorUnreachableError(
            `token-vendor at ${this.base.origin} could not be reached (${describe(e)}) after ${attempt} attempt(s)`,
            { cause: e },
          );
        }
        await this.clock.sleep(delay);
        continue;
      }
      if (status === 200) return { token: parseToken(text, status), sentAt };
      if (status === 401 && !credentialReloaded && (await this.credential.reload())) {
        credentialReloaded = true; // the key or token file was rotated under us: once more
        attempt--;
        continue;
      }
      if (isRetryable(status) && attempt < this.maxAttempts) {
        const delay = retryDelayMs(attempt, retryAfterMs, this.random);
        if (delay !== undefined) {
          await this.clock.sleep(delay);
          continue;
        }
      }
      throw errorOf(status, text, retryAfterMs);
    }
  }
}

/**
 * The margin is `refreshMarginSeconds`, but at most a fifth of the life the token had when it
 * was received: a service whose tokens live 20 s must not make every call a request. A fifth,
 * not more: the service refreshes a token when a quarter of its life is left (its default
 * `refresh.ratio`, 0.75), so asking later than that finds the next token there instead of the
 * same one again (README "Calling from a service").
 */
function holdMarginMs(marginMs: number, lifeMs: number): number {
  return Math.min(marginMs, Math.floor(lifeMs / 5));
}

function keyOf(clientId: string, environment: string | undefined): string {
  return environment === undefined ? `/${clientId}` : `${environment}/${clientId}`;
}

function withBearer(request: Request, accessToken: string): Request {
  request.headers.set('authorization', `Bearer ${accessToken}`);
  return request;
}

function isRetryable(status: number): boolean {
  return status === 503 || status === 500 || status === 504;
}

async function readLimited(res: Response): Promise<string> {
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    return '';
  }
  const text = await res.text();
  return text.length > MAX_ANSWER_BYTES ? '' : text;
}

function parseToken(text: string, status: number): VendedToken {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadAnswerError(
      'token-vendor answered 200 with a body that is not JSON',
      status,
      'bad_answer',
    );
  }
  const b = body as Record<string, unknown>;
  const valid =
    typeof body === 'object' &&
    body !== null &&
    typeof b.access_token === 'string' &&
    b.access_token !== '' &&
    typeof b.token_type === 'string' &&
    typeof b.expires_in === 'number' &&
    Number.isFinite(b.expires_in) &&
    b.expires_in >= 0 &&
    typeof b.expires_at === 'string' &&
    typeof b.client_id === 'string' &&
    typeof b.environment === 'string' &&
    (b.scope === undefined || typeof b.scope === 'string');
  if (!valid) {
    throw new BadAnswerError(
      'token-vendor answered 200 without a token body',
      status,
      'bad_answer',
    );
  }
  // Frozen: the same object is handed to every caller until it is replaced.
  return Object.freeze(b) as unknown as VendedToken;
}

/** The typed error for a final answer; only the service's code and message are carried. */
function errorOf(status: number, text: string, retryAfterMs: number | undefined): TokenVendorError {
  let code = `http_${status}`;
  let detail = '';
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    if (typeof body.error === 'string') code = body.error;
    if (typeof body.message === 'string') detail = `: ${body.message}`;
  } catch {
    // not the service's JSON (a proxy's page): the status says enough
  }
  const message = `token-vendor answered ${status} ${code}${detail}`;
  const retryAfterSeconds = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
  switch (status) {
    case 400:
      return new InvalidRequestError(message, status, code);
    case 401:
      return new CallerUnauthorizedError(message, status, code);
    case 404:
      // Only the service's own answer means "no such client"; a 404 `not_found` is a route this
      // service does not have (an older version), which no retry or caller change fixes either.
      return code === 'unknown_client'
        ? new UnknownClientError(message, status, code)
        : new TokenVendorError(message, status, code);
    case 429:
      return new TooManyRequestsError(message, status, code, retryAfterSeconds);
    case 502:
      return new UpstreamRejectedError(message, status, code);
    case 500:
    case 503:
    case 504:
      return new UpstreamUnavailableError(message, status, code, retryAfterSeconds);
    default:
      return new TokenVendorError(message, status, code);
  }
}

/** Why a request failed, without the request: `ECONNREFUSED`, `timed out`, ... */
function describe(e: unknown): string {
  // Duck-typed: errors from fetch may come from another realm (a VM context, a test runner).
  const error = e as { name?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  if (error?.name === 'TimeoutError') return 'timed out';
  if (typeof error?.cause?.code === 'string') return error.cause.code;
  return typeof error?.message === 'string' ? error.message : String(e);
}

function credentialOf(options: TokenVendorClientOptions): CallerCredential {
  const given = (['callerKey', 'callerKeyFile', 'callerTokenFile'] as const).filter(
    (name) => options[name] !== undefined,
  );
  if (given.length !== 1) {
    throw new ClientConfigError(
      `give exactly one of callerKey, callerKeyFile, callerTokenFile (got ${given.length === 0 ? 'none' : given.join(', ')})`,
    );
  }
  if (options.callerKey !== undefined) return fixedCredential(options.callerKey);
  if (options.callerKeyFile !== undefined)
    return fileCredential(options.callerKeyFile, 'callerKeyFile');
  return fileCredential(options.callerTokenFile as string, 'callerTokenFile');
}

function parseBaseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ClientConfigError(`baseUrl is not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ClientConfigError('baseUrl must be http: or https:');
  // A trailing slash, so `tokens/...` resolves under a path prefix (an ingress path) too.
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  url.search = '';
  url.hash = '';
  return url;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0)
    throw new ClientConfigError(`${name} must be a positive whole number`);
  return value;
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0)
    throw new ClientConfigError(`${name} must be a number of seconds, 0 or more`);
  return value;
}
