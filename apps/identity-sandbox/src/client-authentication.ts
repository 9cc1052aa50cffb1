import { decodeJwt } from 'jose';
import type { SandboxAuthMethod } from './types';

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** What a token request offered as client authentication, before checking it. */
export type ClientCredentials =
  | { method: 'client_secret_post' | 'client_secret_basic'; clientId: string; secret: string }
  /** RFC 7523 §2.2: a signed JWT proves the client; clientId from client_id, else its `sub`. */
  | { method: 'private_key_jwt'; clientId?: string; assertion: string }
  /** Authorization: Basic that does not decode; clientId when at least that part did. */
  | { method: 'malformed_basic'; clientId?: string }
  /** Basic header and client_secret in the body: RFC 6749 §2.3 allows only one method. */
  | { method: 'multiple'; clientId?: string }
  /** No secret at all (maybe a bare client_id). */
  | { method: 'none'; clientId?: string };

/**
 * Reads client_secret_basic or client_secret_post. For Basic, RFC 6749 §2.3.1 has the id and
 * secret form-urlencoded BEFORE base64, so a secret with ':' or '%' survives the round trip only
 * when the client encodes it; decoding here exposes clients that forget to.
 */
export function extractClientCredentials(
  authorization: string | undefined,
  form: URLSearchParams,
): ClientCredentials {
  const formId = form.get('client_id') ?? undefined;
  const formSecret = form.get('client_secret') ?? undefined;
  const basic = parseBasicScheme(authorization);
  const assertion = form.get('client_assertion') ?? undefined;
  const assertionType = form.get('client_assertion_type') ?? undefined;

  if (assertion !== undefined || assertionType !== undefined) {
    const clientId = formId ?? subjectOf(assertion);
    if (basic !== undefined || formSecret !== undefined) return { method: 'multiple', clientId };
    if (assertion === undefined || assertionType !== JWT_BEARER_ASSERTION_TYPE) {
      return { method: 'none', clientId };
    }
    return { method: 'private_key_jwt', clientId, assertion };
  }
  if (basic !== undefined) {
    const decoded = decodeBasicCredentials(basic);
    // A client_id in the body naming the same client is tolerated (some libraries send it);
    // a secret there, or a different id, is two authentications at once.
    if (formSecret !== undefined || (formId !== undefined && formId !== decoded.clientId)) {
      return { method: 'multiple', clientId: decoded.clientId ?? formId };
    }
    if (decoded.clientId === undefined || decoded.secret === undefined) {
      return { method: 'malformed_basic', clientId: decoded.clientId };
    }
    return { method: 'client_secret_basic', clientId: decoded.clientId, secret: decoded.secret };
  }
  if (formId !== undefined && formSecret !== undefined) {
    return { method: 'client_secret_post', clientId: formId, secret: formSecret };
  }
  return { method: 'none', clientId: formId };
}

/** The method as recorded in SandboxRequestRecord. */
export function recordedAuthMethod(credentials: ClientCredentials): SandboxAuthMethod {
  return credentials.method === 'malformed_basic' ? 'client_secret_basic' : credentials.method;
}

/** The assertion's `sub`, unverified: only used to name the client being checked. */
function subjectOf(assertion: string | undefined): string | undefined {
  try {
    const sub = assertion === undefined ? undefined : decodeJwt(assertion).sub;
    return typeof sub === 'string' && sub.length > 0 ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** The base64 part of `Authorization: Basic ...`; undefined for no header or another scheme. */
function parseBasicScheme(authorization: string | undefined): string | undefined {
  const match = /^\s*basic(?:\s+(\S*))?\s*$/i.exec(authorization ?? '');
  return match ? (match[1] ?? '') : undefined;
}

/** Each part that decodes; a missing part means that part was malformed. */
function decodeBasicCredentials(token: string): { clientId?: string; secret?: string } {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(token)) return {};
  const text = Buffer.from(token, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return {};
  const clientId = formUrlDecode(text.slice(0, colon));
  return {
    clientId: clientId === '' ? undefined : clientId,
    secret: formUrlDecode(text.slice(colon + 1)),
  };
}

/** application/x-www-form-urlencoded decoding that refuses malformed escapes instead of guessing. */
export function formUrlDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The matching encoder, for tests and demo scripts building a correct Basic header. */
export function basicAuthorization(clientId: string, secret: string): string {
  const encode = (v: string): string => encodeURIComponent(v).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`, 'utf8').toString('base64')}`;
}
