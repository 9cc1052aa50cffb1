import type { AclEntry, CallerConfig, ClientConfig } from '@app/config';

/** Whether the caller's ACL lets it have tokens of this client. */
export function isCallerAllowed(caller: CallerConfig, client: ClientConfig): boolean {
  return caller.clients.some((entry) => aclEntryMatches(entry, client));
}

export function aclEntryMatches(entry: AclEntry, client: ClientConfig): boolean {
  switch (entry.kind) {
    case 'any':
      return true;
    case 'client':
      return entry.clientId === client.clientId;
    case 'environment-client':
      return entry.environment === client.environment && entry.clientId === client.clientId;
  }
}
