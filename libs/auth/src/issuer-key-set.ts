import { Logger } from '@nestjs/common';
import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
} from 'jose';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { isKeySourceUrl, type CallerIssuerConfig } from '@app/config';

/** How long one JWKS or discovery request may take. */
export const JWKS_TIMEOUT_MS = 5_000;
/**
 * The least time between two JWKS fetches caused by an unknown `kid` (a token signed with a key
 * we do not have): an issuer's new key is picked up within this, yet tokens with made-up key
 * ids cannot make us hammer the issuer.
 */
export const JWKS_REFETCH_COOLDOWN_MS = 5_000;
/**
 * Keys are re-fetched this often even without an unknown `kid`, so removed keys are dropped: by a
 * verification that finds them older, or by the periodic check (CALLER_KEYS_CHECK_INTERVAL_MS)
 * when every caller is answered from the verified-token cache (README "Callers without keys").
 */
export const JWKS_MAX_AGE_MS = 10 * 60_000;
/**
 * After a failed fetch, the cached keys are used without asking the issuer again for this long:
 * a JWKS endpoint that is down must not make every new token wait for a timeout.
 */
export const JWKS_RETRY_AFTER_FAILURE_MS = 5_000;

/**
 * Largest JWKS or discovery document read (a cluster's JWKS is about 1 KiB; a large IdP's a few
 * KiB): a bigger answer is a failed fetch, never buffered whole.
 */
export const MAX_KEY_DOCUMENT_BYTES = 256 * 1024;

/** The issuer's keys cannot be fetched and none are cached. */
export class IssuerKeysUnavailable extends Error {
  constructor(readonly issuer: string) {
    super(`the signing keys of caller issuer ${issuer} cannot be fetched`);
    this.name = 'IssuerKeysUnavailable';
  }
}

type KeyLookup = (
  header: JWSHeaderParameters,
  token: FlattenedJWSInput,
) => ReturnType<ReturnType<typeof createLocalJWKSet>>;

/** jose's errors of the key lookup itself (the token's fault), as opposed to fetch failures. */
const LOOKUP_ERRORS = new Set([
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWK_INVALID',
]);

/**
 * The signing keys of one caller issuer: jose's remote JWKS (fetched on first use, cached,
 * re-fetched on an unknown `kid` at most every JWKS_REFETCH_COOLDOWN_MS and after
 * JWKS_MAX_AGE_MS), found through OpenID discovery when no `jwksUri` is configured. When the
 * issuer cannot be reached the last keys fetched stay in use (README "Callers without keys");
 * with none, lookups throw IssuerKeysUnavailable (a 503 for JWT callers only).
 *
 * `generation` changes when a fetched JWKS no longer holds a key the previous one held: tokens
 * verified under an older generation are verified again, so a key the issuer withdrew stops
 * vouching for tokens already in the verified-token cache.
 */
export class IssuerKeySet {
  private readonly logger = new Logger('CallerIssuer');
  private remote?: ReturnType<typeof createRemoteJWKSet>;
  private discovery?: Promise<URL>;
  private failedAt = -Infinity;
  private fallback?: { answers: number; lookup: KeyLookup };
  private keyGeneration = 0;
  /** The keys of the JWKS in use (each JWK as JSON), to tell a withdrawn key. */
  private keysInUse = new Set<string>();
  /** Answers (200) to our JWKS and discovery requests, and how many `noteKeys` has looked at. */
  private answers = 0;
  private answersNoted = 0;
  /** When the keys were last fetched, on the injected clock (jose's own age runs on Date.now). */
  private keysFetchedAt = -Infinity;

  /**
   * @param dispatcher the connection pool of the requests (the IdP calls', honouring
   *   HTTPS_PROXY / NO_PROXY: README "Egress and trust"); Node's global one when absent.
   */
  constructor(
    readonly config: CallerIssuerConfig,
    private readonly now: () => number = Date.now,
    private readonly dispatcher?: Dispatcher,
  ) {}

  /** Changes when a refetched JWKS withdrew a key (see the class comment). */
  get generation(): number {
    return this.keyGeneration;
  }

  /** The key lookup jwtVerify calls with the token's protected header. */
  readonly lookup: KeyLookup = async (header, token) => {
    if (this.now() - this.failedAt < JWKS_RETRY_AFTER_FAILURE_MS) {
      return this.cachedLookup()(header, token);
    }
    try {
      const remote = await this.remoteSet();
      const key = await remote(header, token).finally(() => this.noteKeys());
      if (this.failedAt !== -Infinity) {
        this.failedAt = -Infinity;
        this.logger.log({ msg: 'caller issuer keys reachable again', issuer: this.config.name });
      }
      return key;
    } catch (e) {
      if (LOOKUP_ERRORS.has((e as { code?: string }).code ?? '')) throw e;
      this.failedAt = this.now();
      this.logger.warn({
        msg: 'caller issuer keys cannot be fetched; the cached keys stay in use',
        issuer: this.config.name,
        reason: (e as Error).message,
      });
      return this.cachedLookup()(header, token);
    }
  };

  /**
   * Fetches the keys again when the last fetch is JWKS_MAX_AGE_MS old. Run periodically: a
   * verification refetches stale keys by itself, but while every caller is answered from the
   * verified-token cache none runs, and a withdrawn key would vouch for cached tokens until
   * they expire. A failed fetch keeps the keys in use, as a failed lookup does.
   */
  async refreshIfStale(): Promise<void> {
    const remote = this.remote;
    if (remote === undefined) return; // never used: nothing cached to re-check
    if (this.now() - this.keysFetchedAt < JWKS_MAX_AGE_MS) return;
    if (this.now() - this.failedAt < JWKS_RETRY_AFTER_FAILURE_MS) return;
    try {
      await remote.reload();
    } catch (e) {
      this.failedAt = this.now();
      this.logger.warn({
        msg: 'caller issuer keys cannot be fetched; the cached keys stay in use',
        issuer: this.config.name,
        reason: (e as Error).message,
      });
      return;
    }
    this.noteKeys();
  }

  /** After a fetch: a key of the JWKS in use that the new one lacks starts a new generation. */
  private noteKeys(): void {
    if (this.answersNoted === this.answers) return;
    this.answersNoted = this.answers;
    const jwks = this.remote?.jwks();
    if (jwks === undefined) return;
    // Members in a fixed order: an issuer whose servers list a key's members in another order
    // has not withdrawn it.
    const keys = new Set(jwks.keys.map((key) => JSON.stringify(key, Object.keys(key).sort())));
    const withdrawn = [...this.keysInUse].filter((key) => !keys.has(key)).length;
    this.keysInUse = keys;
    if (withdrawn === 0) return;
    this.keyGeneration++;
    this.logger.log({
      msg: 'caller issuer withdrew signing keys; tokens verified before are verified again',
      issuer: this.config.name,
      withdrawn,
    });
  }

  private cachedLookup(): KeyLookup {
    // jose's jwks() is a fresh copy on every call: the set is rebuilt only after another fetch,
    // so its imported keys are reused while the issuer is down.
    if (this.fallback?.answers === this.answers) return this.fallback.lookup;
    const jwks = this.remote?.jwks();
    if (jwks === undefined) {
      return () => Promise.reject(new IssuerKeysUnavailable(this.config.name));
    }
    this.fallback = { answers: this.answers, lookup: createLocalJWKSet(jwks) };
    return this.fallback.lookup;
  }

  private async remoteSet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.remote) return this.remote;
    const url =
      this.config.jwksUri !== undefined ? new URL(this.config.jwksUri) : await this.discover();
    this.remote ??= createRemoteJWKSet(url, {
      timeoutDuration: JWKS_TIMEOUT_MS,
      cooldownDuration: JWKS_REFETCH_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      [customFetch]: this.fetchWithCredentials,
    });
    return this.remote;
  }

  /**
   * fetch, with the `bearerTokenFile`'s current token when one is configured and the URL is on
   * an origin the configuration names, and the answer read up to MAX_KEY_DOCUMENT_BYTES (jose
   * reads a JWKS whole, however large).
   */
  private readonly fetchWithCredentials: FetchImplementation = async (url, options) => {
    const headers = new Headers(options.headers);
    if (this.credentialOrigins().has(new URL(url).origin)) {
      const token = await this.bearerToken();
      if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    }
    const response =
      this.dispatcher === undefined
        ? await fetch(url, { ...options, headers })
        : // undici's own Response: the same WHATWG shape, read below like the global one.
          ((await undiciFetch(url, {
            method: options.method,
            headers: [...headers],
            redirect: options.redirect,
            signal: options.signal,
            dispatcher: this.dispatcher,
          })) as unknown as Response);
    const bounded = await boundedResponse(response, MAX_KEY_DOCUMENT_BYTES);
    if (bounded.status === 200) {
      this.answers++;
      this.keysFetchedAt = this.now();
    }
    return bounded;
  };

  /**
   * The origins the `bearerTokenFile`'s token may be sent to: the configured `issuer`'s and
   * `jwksUri`'s. A `jwks_uri` that discovery names on another origin is fetched without it, so
   * whoever answers the discovery document cannot collect the token (README "Callers without
   * keys").
   */
  private credentialOrigins(): Set<string> {
    const origins = new Set<string>();
    for (const value of [this.config.issuer, this.config.jwksUri]) {
      if (value !== undefined && URL.canParse(value)) origins.add(new URL(value).origin);
    }
    return origins;
  }

  /** The token of `bearerTokenFile`, read now (the kubelet rotates it); none when not configured. */
  private async bearerToken(): Promise<string | undefined> {
    const path = this.config.bearerTokenFile;
    if (path === undefined) return undefined;
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length === 0) throw new Error(`bearerTokenFile ${path} is empty`);
    return token;
  }

  /**
   * OpenID discovery from the issuer (`<issuer>/.well-known/openid-configuration`): the
   * document must name the same issuer (OpenID Connect Discovery §4.3) and a JWKS URL we may
   * fetch. A failure is forgotten so the next token tries again.
   */
  private discover(): Promise<URL> {
    this.discovery ??= fetchDiscovery(this.config.issuer, this.fetchWithCredentials).catch(
      (e: unknown) => {
        this.discovery = undefined;
        throw e;
      },
    );
    return this.discovery;
  }
}

async function fetchDiscovery(issuer: string, fetchImpl: FetchImplementation): Promise<URL> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetchImpl(url, {
    method: 'GET',
    headers: new Headers({ accept: 'application/json' }),
    redirect: 'manual',
    signal: AbortSignal.timeout(JWKS_TIMEOUT_MS),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`discovery answered ${response.status}`);
  }
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (document.issuer !== issuer) throw new Error('discovery names another issuer');
  if (typeof document.jwks_uri !== 'string' || !isKeySourceUrl(document.jwks_uri)) {
    throw new Error('discovery names no usable jwks_uri');
  }
  return new URL(document.jwks_uri);
}

/**
 * The same answer with its body read into memory, refused past `maxBytes` (by Content-Length
 * before reading, else while reading). Only a 200's body is kept: nobody reads another's.
 */
async function boundedResponse(response: Response, maxBytes: number): Promise<Response> {
  const init = {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  };
  if (response.status !== 200 || response.body === null) {
    await response.body?.cancel().catch(() => undefined);
    return new Response(null, init);
  }
  const tooLarge = () => new Error(`the answer is larger than ${maxBytes} bytes`);
  if (Number(response.headers.get('content-length') ?? 0) > maxBytes) {
    await response.body.cancel().catch(() => undefined);
    throw tooLarge();
  }
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new Response(Buffer.concat(chunks), init);
}
