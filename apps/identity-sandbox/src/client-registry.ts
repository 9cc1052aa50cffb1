import {
  X509Certificate,
  createHash,
  createPublicKey,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { SandboxInputError } from './sandbox-input-error';
import type { SandboxClient } from './types';

/** RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export interface RegisteredClient {
  clientId: string;
  /** Only the digest is kept, so the comparison below always sees equal-length inputs. */
  secretDigest?: Buffer;
  /** private_key_jwt: the keys a client assertion may be signed with. */
  publicKeys: readonly KeyObject[];
  /** private_key_jwt: certificate credentials, found by the thumbprint the assertion names. */
  assertionCertificates: readonly AssertionCertificate[];
  /** self_signed_tls_client_auth: SHA-256 thumbprints (base64url) of the pinned certificates. */
  certificateThumbprints: readonly string[];
  /** tls_client_auth: the subject DN the CA-issued certificate must carry. */
  tlsSubjectDn?: string;
  scopes: readonly string[];
}

/** RFC 8705 §3.1: the `x5t#S256` of a certificate. */
export function certificateThumbprint(certificate: X509Certificate): string {
  return createHash('sha256').update(certificate.raw).digest('base64url');
}

/** A certificate credential of private_key_jwt, with the two names an assertion may use. */
export interface AssertionCertificate {
  certificate: X509Certificate;
  /** RFC 7515 §4.1.8: base64url SHA-256 of the DER. */
  x5tS256: string;
  /** RFC 7515 §4.1.7: base64url SHA-1 of the DER (Entra ID's older form). */
  x5t: string;
}

function assertionCertificateOf(pem: string): AssertionCertificate {
  const certificate = new X509Certificate(pem);
  return {
    certificate,
    x5tS256: certificateThumbprint(certificate),
    x5t: createHash('sha1').update(certificate.raw).digest('base64url'),
  };
}

/** `CN=a, O=b` as OpenSSL prints a subject, one attribute a line, joined the RFC 4514 way. */
function subjectDn(certificate: X509Certificate): string {
  return certificate.subject.split('\n').filter(Boolean).reverse().join(',');
}

/** The algorithms a client assertion may use (as Keycloak, Entra ID and Okta accept). */
export const ASSERTION_ALGORITHMS = ['RS256', 'PS256', 'ES256'];
/** An assertion living longer than this is refused: RFC 7523 wants a short life. */
const MAX_ASSERTION_LIFETIME_S = 300;

/** A verified client assertion, as the request records it. */
export interface VerifiedAssertion {
  client: RegisteredClient;
  header: Record<string, unknown>;
  claims: JWTPayload;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Compared against when the client is unknown, so both failures cost the same time. */
const UNKNOWN_CLIENT_DIGEST = digest('\u0000unknown-client\u0000');

/** The clients the sandbox accepts, with their current secrets. */
export class ClientRegistry {
  private readonly clients = new Map<string, RegisteredClient>();

  constructor(clients: readonly SandboxClient[]) {
    for (const client of parseClients(clients)) {
      this.clients.set(client.clientId, toRegistered(client));
    }
  }

  /** jti of accepted assertions until they expire: an assertion is good for one request. */
  private readonly usedJtis = new Map<string, number>();

  /** The client when id and secret match, otherwise undefined (unknown id and bad secret alike). */
  authenticate(clientId: string, secret: string): RegisteredClient | undefined {
    const client = this.clients.get(clientId);
    const matches = timingSafeEqual(digest(secret), client?.secretDigest ?? UNKNOWN_CLIENT_DIGEST);
    return client?.secretDigest && matches ? client : undefined;
  }

  /**
   * private_key_jwt (RFC 7523 §3, OpenID Connect Core §9): the assertion must be signed by one
   * of the client's keys, with `iss` = `sub` = the client id, an `aud` naming one of
   * `audiences` (the token endpoint, or the issuer), an `exp` at most 5 minutes ahead and a
   * `jti` not seen before. Undefined when any of that fails.
   */
  async authenticateAssertion(
    clientId: string,
    assertion: string,
    audiences: readonly string[],
  ): Promise<VerifiedAssertion | undefined> {
    const client = this.clients.get(clientId);
    if (!client) return undefined;
    const keys = ClientRegistry.verificationKeys(client, assertion);
    for (const key of keys) {
      try {
        const { payload, protectedHeader } = await jwtVerify(assertion, key, {
          issuer: clientId,
          subject: clientId,
          audience: [...audiences],
          algorithms: ASSERTION_ALGORITHMS,
          requiredClaims: ['exp', 'jti'],
        });
        const nowS = Math.floor(Date.now() / 1000);
        if ((payload.exp ?? 0) - nowS > MAX_ASSERTION_LIFETIME_S) return undefined;
        this.forgetExpiredJtis(nowS);
        const jtiKey = `${clientId}\u0000${payload.jti ?? ''}`;
        if (this.usedJtis.has(jtiKey)) return undefined;
        this.usedJtis.set(jtiKey, payload.exp ?? nowS);
        return { client, header: { ...protectedHeader }, claims: payload };
      } catch {
        // not this key (or not valid at all): try the next one
      }
    }
    return undefined;
  }

  /**
   * The keys an assertion may be verified with. A header naming a certificate (`x5t#S256`,
   * `x5t`, or both, which must then name the same one) selects that certificate's key alone,
   * as Entra ID does; a name no registered certificate has, or a certificate outside its
   * validity, leaves none (`invalid_client`). A header naming none: the client's public keys.
   */
  private static verificationKeys(client: RegisteredClient, assertion: string): KeyObject[] {
    const header = ClientRegistry.headerOf(assertion);
    const s256 = header?.['x5t#S256'];
    const sha1 = header?.x5t;
    if (s256 === undefined && sha1 === undefined) return [...client.publicKeys];
    const now = Date.now();
    const named = client.assertionCertificates.find(
      (c) => (s256 === undefined || s256 === c.x5tS256) && (sha1 === undefined || sha1 === c.x5t),
    );
    if (
      named === undefined ||
      now < named.certificate.validFromDate.getTime() ||
      now > named.certificate.validToDate.getTime()
    ) {
      return [];
    }
    return [named.certificate.publicKey];
  }

  /**
   * RFC 8705 §2: the certificate of the TLS connection authenticates the client it names,
   * either pinned (self-signed) or issued by the client CA with the registered subject DN.
   */
  authenticateCertificate(
    clientId: string,
    certificate: X509Certificate,
    chainVerified: boolean,
  ):
    | { client: RegisteredClient; method: 'tls_client_auth' | 'self_signed_tls_client_auth' }
    | undefined {
    const client = this.clients.get(clientId);
    if (!client) return undefined;
    if (client.certificateThumbprints.includes(certificateThumbprint(certificate))) {
      return { client, method: 'self_signed_tls_client_auth' };
    }
    if (client.tlsSubjectDn !== undefined && chainVerified) {
      const dn = subjectDn(certificate);
      if (dn === client.tlsSubjectDn) return { client, method: 'tls_client_auth' };
    }
    return undefined;
  }

  /** Rotates a client's pinned certificates (the old ones stop working at once) or adds it. */
  setCertificates(clientId: string, certificates: readonly string[]): void {
    this.update(clientId, {
      certificateThumbprints: certificates.map((pem) =>
        certificateThumbprint(new X509Certificate(pem)),
      ),
    });
  }

  /** Rotates a client's certificate credentials (assertions naming others fail at once) or adds it. */
  setAssertionCertificates(clientId: string, certificates: readonly string[]): void {
    const client = this.validated(clientId, { assertionCertificates: [...certificates] });
    this.update(clientId, { assertionCertificates: toRegistered(client).assertionCertificates });
  }

  /** The assertion's header if it parses at all, for the request record of a refusal. */
  static headerOf(assertion: string): Record<string, unknown> | undefined {
    try {
      return { ...decodeProtectedHeader(assertion) };
    } catch {
      return undefined;
    }
  }

  /** Rotates a secret (the old one stops working at once) or adds a client. */
  setSecret(clientId: string, secret: string, scopes?: readonly string[]): void {
    const client = this.validated(clientId, { secret }, scopes);
    const { secretDigest, scopes: validScopes } = toRegistered(client);
    this.update(clientId, { secretDigest, scopes: validScopes });
  }

  /** Rotates a client's public keys (assertions signed by other keys fail at once) or adds it. */
  setPublicKeys(clientId: string, publicKeys: readonly string[]): void {
    const client = this.validated(clientId, { publicKeys: [...publicKeys] });
    this.update(clientId, { publicKeys: toRegistered(client).publicKeys });
  }

  /** One credential of a client checked like a configured one, with its scopes (or `scopes`). */
  private validated(
    clientId: string,
    credential: Partial<SandboxClient>,
    scopes?: readonly string[],
  ): SandboxClient {
    return validateClient({
      clientId,
      ...credential,
      scopes: [...(scopes ?? this.clients.get(clientId)?.scopes ?? [])],
    });
  }

  /** A client's registration with `changes` applied, its other credentials kept; or a new one. */
  private update(clientId: string, changes: Partial<RegisteredClient>): void {
    const existing = this.clients.get(clientId) ?? {
      clientId,
      publicKeys: [],
      assertionCertificates: [],
      certificateThumbprints: [],
      scopes: [],
    };
    this.clients.set(clientId, { ...existing, ...changes });
  }

  private forgetExpiredJtis(nowS: number): void {
    for (const [jti, exp] of this.usedJtis) if (exp < nowS) this.usedJtis.delete(jti);
  }

  /** Every scope some client may request, for the discovery document. */
  allScopes(): string[] {
    const all = new Set<string>();
    for (const client of this.clients.values()) client.scopes.forEach((s) => all.add(s));
    return [...all].sort();
  }

  clientIds(): string[] {
    return [...this.clients.keys()];
  }
}

function toRegistered(client: SandboxClient): RegisteredClient {
  return {
    clientId: client.clientId,
    ...(client.secret !== undefined ? { secretDigest: digest(client.secret) } : {}),
    publicKeys: (client.publicKeys ?? []).map((pem) => createPublicKey(pem)),
    assertionCertificates: (client.assertionCertificates ?? []).map(assertionCertificateOf),
    certificateThumbprints: (client.selfSignedCertificates ?? []).map((pem) =>
      certificateThumbprint(new X509Certificate(pem)),
    ),
    ...(client.tlsSubjectDn !== undefined ? { tlsSubjectDn: client.tlsSubjectDn } : {}),
    scopes: Object.freeze([...(client.scopes ?? [])]),
  };
}

/** Validates a client list from options, a file or the environment. */
export function parseClients(value: unknown): SandboxClient[] {
  if (!Array.isArray(value)) throw new SandboxInputError('clients must be an array');
  const seen = new Set<string>();
  return value.map((entry: unknown, index) => {
    const client = validateClient(entry, `clients[${index}]`);
    if (seen.has(client.clientId)) {
      throw new SandboxInputError(`clients[${index}].clientId is a duplicate`);
    }
    seen.add(client.clientId);
    return client;
  });
}

export function validateClient(value: unknown, where = 'client'): SandboxClient {
  if (typeof value !== 'object' || value === null) {
    throw new SandboxInputError(`${where} must be an object`);
  }
  const {
    clientId,
    secret,
    publicKeys,
    assertionCertificates,
    scopes,
    selfSignedCertificates,
    tlsSubjectDn,
  } = value as Record<string, unknown>;
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new SandboxInputError(`${where}.clientId must be a non-empty string`);
  }
  const keys = validatePublicKeys(publicKeys, where);
  const certificates = validateCertificates(
    selfSignedCertificates,
    `${where}.selfSignedCertificates`,
  );
  const keyCertificates = validateCertificates(
    assertionCertificates,
    `${where}.assertionCertificates`,
  );
  if (tlsSubjectDn !== undefined && (typeof tlsSubjectDn !== 'string' || tlsSubjectDn === '')) {
    throw new SandboxInputError(`${where}.tlsSubjectDn must be a non-empty string`);
  }
  const otherCredential =
    keys !== undefined ||
    keyCertificates !== undefined ||
    certificates !== undefined ||
    tlsSubjectDn !== undefined;
  if (!(otherCredential && secret === undefined)) {
    if (typeof secret !== 'string' || secret.length === 0) {
      throw new SandboxInputError(`${where}.secret must be a non-empty string`);
    }
  }
  const credentials = {
    ...(typeof secret === 'string' ? { secret } : {}),
    ...(keys !== undefined ? { publicKeys: keys } : {}),
    ...(keyCertificates !== undefined ? { assertionCertificates: keyCertificates } : {}),
    ...(certificates !== undefined ? { selfSignedCertificates: certificates } : {}),
    ...(typeof tlsSubjectDn === 'string' ? { tlsSubjectDn } : {}),
  };
  if (scopes === undefined) return { clientId, ...credentials, scopes: [] };
  if (!Array.isArray(scopes)) {
    throw new SandboxInputError(`${where}.scopes must be an array of scope tokens`);
  }
  for (const scope of scopes as unknown[]) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) {
      throw new SandboxInputError(`${where}.scopes must be an array of scope tokens`);
    }
  }
  return { clientId, ...credentials, scopes: [...new Set(scopes as string[])] };
}

function validateCertificates(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  const message = `${field} must be a non-empty array of PEM certificates`;
  if (!Array.isArray(value) || value.length === 0) throw new SandboxInputError(message);
  for (const pem of value as unknown[]) {
    try {
      new X509Certificate(pem as string);
    } catch {
      throw new SandboxInputError(message);
    }
  }
  return [...(value as string[])];
}

/** Undefined when none are given; otherwise one or more PEM public keys that parse. */
function validatePublicKeys(value: unknown, where: string): string[] | undefined {
  if (value === undefined) return undefined;
  const message = `${where}.publicKeys must be a non-empty array of PEM public keys`;
  if (!Array.isArray(value) || value.length === 0) throw new SandboxInputError(message);
  for (const pem of value as unknown[]) {
    if (typeof pem !== 'string') throw new SandboxInputError(message);
    try {
      createPublicKey(pem);
    } catch {
      throw new SandboxInputError(message);
    }
  }
  return [...(value as string[])];
}
