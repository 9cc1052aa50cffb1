import type { IncomingMessage, ServerResponse } from 'node:http';
import { extractClientCredentials, recordedAuthMethod } from './client-authentication';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { ClientRegistry, certificateThumbprint, type RegisteredClient } from './client-registry';
import { assertionAudiences, MTLS_TOKEN_PATH } from './discovery';
import { applyFault } from './fault-responses';
import { NO_STORE_HEADERS, readBody, sendJson } from './http-io';
import type { SandboxContext } from './sandbox-context';
import { grantScopes, issueToken, type TokenResponseBody } from './token-issuer';
import type { Fault, SandboxRequestRecord } from './types';

/** Parameters that RFC 6749 §3.2 says must not appear more than once. */
const SINGLE_VALUED = [
  'grant_type',
  'client_id',
  'client_secret',
  'client_assertion',
  'client_assertion_type',
  'scope',
  'audience',
] as const;
/** Form fields with a meaning of their own; the rest are recorded as `extraParams`. */
const KNOWN_FIELDS: readonly string[] = [...SINGLE_VALUED, 'resource'];

/** The outcome of the normal (fault-free) flow. */
type TokenOutcome =
  { ok: true; body: TokenResponseBody } | { ok: false; error: string; description?: string };

/**
 * POST /connect/token. Order: read the body, record what was asked, apply an injected fault
 * (before authentication, so faults hit every client alike), then validate and issue.
 * Validation follows IdentityServer: client authentication first, then grant type, then scope.
 */
export async function handleTokenRequest(
  ctx: SandboxContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const startedAt = Date.now();
  ctx.stats.tokenRequest();
  // Only fields the request carried are set, so the JSON of /_sandbox/requests stays lean.
  const record: SandboxRequestRecord = withoutUndefined({
    authMethod: 'none',
    contentType: req.headers['content-type'],
    accept: req.headers.accept,
    acceptEncoding: req.headers['accept-encoding'],
    at: startedAt,
  });
  ctx.stats.record(record);
  const finish = (status: number | undefined, outcome: string): void => {
    if (status !== undefined) record.status = status;
    ctx.log({
      msg: 'token request',
      clientId: record.clientId,
      authMethod: record.authMethod,
      status,
      outcome,
      fault: record.fault,
      durationMs: Date.now() - startedAt,
    });
  };

  const body = await readBody(req);
  const form =
    body.ok && isFormUrlEncoded(req.headers['content-type'])
      ? new URLSearchParams(body.body.toString('utf8'))
      : new URLSearchParams();
  const credentials = extractClientCredentials(req.headers.authorization, form);
  Object.assign(
    record,
    withoutUndefined({
      clientId: credentials.clientId,
      authMethod: recordedAuthMethod(credentials),
      scope: form.get('scope') ?? undefined,
      grantType: form.get('grant_type') ?? undefined,
      audience: form.get('audience') ?? undefined,
      resources: form.has('resource') ? form.getAll('resource') : undefined,
      extraParams: extraParamsOf(form),
      assertionHeader:
        credentials.method === 'private_key_jwt'
          ? ClientRegistry.headerOf(credentials.assertion)
          : undefined,
    }),
  );
  ctx.stats.client(credentials.clientId);
  const peer = peerCertificateOf(req);
  if (peer) record.clientCertificateThumbprint = certificateThumbprint(peer.certificate);
  if (new URL(req.url ?? '/', 'http://sandbox').pathname === MTLS_TOKEN_PATH)
    record.mtlsAlias = true;

  if (!body.ok) {
    if (body.reason === 'aborted') return finish(undefined, 'aborted');
    ctx.stats.rejected();
    const description = 'request body larger than 64 KiB';
    sendJson(
      req,
      res,
      413,
      { error: 'invalid_request', error_description: description },
      NO_STORE_HEADERS,
    );
    return finish(413, 'invalid_request');
  }

  const fault = ctx.faults.take();
  if (fault) {
    ctx.stats.faulted();
    record.fault = fault.mode;
    const result = await applyFault(fault, req, res, ctx.settings.expiresIn, (ms) => ctx.sleep(ms));
    if (result.kind === 'answered') return finish(result.status, fault.mode);
    if (result.kind === 'gone') return finish(undefined, 'client_gone');
  }

  const outcome = await processTokenRequest(ctx, req, form, credentials, record);
  if (!outcome.ok) {
    ctx.stats.rejected();
    const error =
      outcome.description === undefined
        ? { error: outcome.error }
        : { error: outcome.error, error_description: outcome.description };
    sendJson(req, res, 400, error, NO_STORE_HEADERS);
    return finish(400, outcome.error);
  }
  ctx.stats.issued();
  sendJson(req, res, 200, alterSuccess(outcome.body, fault), NO_STORE_HEADERS);
  finish(200, fault ? fault.mode : 'issued');
}

async function processTokenRequest(
  ctx: SandboxContext,
  req: IncomingMessage,
  form: URLSearchParams,
  credentials: ReturnType<typeof extractClientCredentials>,
  record: SandboxRequestRecord,
): Promise<TokenOutcome> {
  if (!isFormUrlEncoded(req.headers['content-type'])) {
    return {
      ok: false,
      error: 'invalid_request',
      description: 'Content-Type must be application/x-www-form-urlencoded',
    };
  }
  const repeated = SINGLE_VALUED.find((name) => form.getAll(name).length > 1);
  if (repeated) {
    return { ok: false, error: 'invalid_request', description: `${repeated} is repeated` };
  }
  if (credentials.method === 'multiple') {
    return {
      ok: false,
      error: 'invalid_request',
      description: 'more than one client authentication method',
    };
  }
  if (
    (credentials.method === 'client_secret_post' ||
      credentials.method === 'client_secret_basic' ||
      credentials.method === 'private_key_jwt') &&
    !ctx.settings.authMethods.includes(credentials.method)
  ) {
    return {
      ok: false,
      error: 'invalid_client',
      description: `${credentials.method} is not enabled for this IdP`,
    };
  }
  let client: RegisteredClient | undefined;
  if (credentials.method === 'client_secret_post' || credentials.method === 'client_secret_basic') {
    client = ctx.clients.authenticate(credentials.clientId, credentials.secret);
  } else if (credentials.method === 'private_key_jwt' && credentials.clientId !== undefined) {
    const verified = await ctx.clients.authenticateAssertion(
      credentials.clientId,
      credentials.assertion,
      assertionAudiences(ctx, req),
    );
    client = verified?.client;
    if (verified) record.assertionClaims = { ...verified.claims };
  } else if (credentials.method === 'none' && credentials.clientId !== undefined) {
    const peer = peerCertificateOf(req);
    const verified =
      peer &&
      ctx.clients.authenticateCertificate(credentials.clientId, peer.certificate, peer.authorized);
    if (verified && ctx.settings.authMethods.includes(verified.method)) {
      client = verified.client;
      record.authMethod = verified.method;
    }
  }
  if (!client) return { ok: false, error: 'invalid_client' };

  if (form.get('grant_type') !== 'client_credentials') {
    return { ok: false, error: 'unsupported_grant_type' };
  }
  const scopes = grantScopes(form.get('scope') ?? undefined, client.scopes);
  if (!scopes) return { ok: false, error: 'invalid_scope' };

  const audiences = [
    ...(form.get('audience') !== null ? [form.get('audience') as string] : []),
    ...form.getAll('resource'),
  ];
  return {
    ok: true,
    body: issueToken(ctx.signer, ctx.settings, client.clientId, scopes, audiences),
  };
}

/** The client certificate of an https request, and whether it chains to the client CA. */
function peerCertificateOf(
  req: IncomingMessage,
): { certificate: X509Certificate; authorized: boolean } | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return undefined;
  return {
    certificate: new X509Certificate(certificate.raw),
    authorized: socket.authorized === true,
  };
}

/** The form fields the sandbox gives no meaning to, as sent (last value wins). */
function extraParamsOf(form: URLSearchParams): Record<string, string> | undefined {
  const extra = [...form.entries()].filter(([name]) => !KNOWN_FIELDS.includes(name));
  return extra.length === 0 ? undefined : Object.fromEntries(extra);
}

/** wrong_token_type and expires_in: a valid token with one field of the answer spoiled. */
function alterSuccess(body: TokenResponseBody, fault: Fault | undefined): TokenResponseBody {
  if (fault?.mode === 'wrong_token_type') return { ...body, token_type: 'mac' };
  if (fault?.mode === 'expires_in') {
    const altered = { ...body };
    if (fault.expiresIn === undefined || fault.expiresIn === null) delete altered.expires_in;
    else altered.expires_in = fault.expiresIn;
    return altered;
  }
  return body;
}

function isFormUrlEncoded(contentType: string | undefined): boolean {
  const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  return mediaType === 'application/x-www-form-urlencoded';
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
