import { createHash, timingSafeEqual } from 'node:crypto';
import { SandboxInputError } from './sandbox-input-error';
import type { SandboxClient } from './types';

/** RFC 6749 §3.3 scope-token: printable ASCII except space, '"' and '\'. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export interface RegisteredClient {
  clientId: string;
  /** Only the digest is kept, so the comparison below always sees equal-length inputs. */
  secretDigest: Buffer;
  scopes: readonly string[];
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

  /** The client when id and secret match, otherwise undefined (unknown id and bad secret alike). */
  authenticate(clientId: string, secret: string): RegisteredClient | undefined {
    const client = this.clients.get(clientId);
    const matches = timingSafeEqual(digest(secret), client?.secretDigest ?? UNKNOWN_CLIENT_DIGEST);
    return client && matches ? client : undefined;
  }

  /** Rotates a secret (the old one stops working at once) or adds a client. */
  setSecret(clientId: string, secret: string, scopes?: readonly string[]): void {
    const existing = this.clients.get(clientId);
    const client = validateClient({
      clientId,
      secret,
      scopes: [...(scopes ?? existing?.scopes ?? [])],
    });
    this.clients.set(clientId, toRegistered(client));
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
    secretDigest: digest(client.secret),
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
  const { clientId, secret, scopes } = value as Record<string, unknown>;
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new SandboxInputError(`${where}.clientId must be a non-empty string`);
  }
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new SandboxInputError(`${where}.secret must be a non-empty string`);
  }
  if (scopes === undefined) return { clientId, secret, scopes: [] };
  if (!Array.isArray(scopes)) {
    throw new SandboxInputError(`${where}.scopes must be an array of scope tokens`);
  }
  for (const scope of scopes as unknown[]) {
    if (typeof scope !== 'string' || !SCOPE_TOKEN.test(scope)) {
      throw new SandboxInputError(`${where}.scopes must be an array of scope tokens`);
    }
  }
  return { clientId, secret, scopes: [...new Set(scopes as string[])] };
}
