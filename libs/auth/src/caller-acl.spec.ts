import type { AclEntry, CallerConfig, ClientConfig } from '@app/config';
import { aclEntryMatches, isCallerAllowed } from './caller-acl';

function client(environment: string, clientId: string): ClientConfig {
  return {
    key: `${environment}/${clientId}`,
    clientId,
    environment,
    secretSource: { kind: 'env', name: 'SECRET' },
    authMethod: 'client_secret_post',
  };
}

function caller(clients: AclEntry[]): CallerConfig {
  return {
    name: 'deals-service',
    keyDigests: [Buffer.alloc(32)],
    inlineKeyDigests: [Buffer.alloc(32)],
    clients,
    admin: false,
  };
}

const UAT_API = client('uat', 'api.client');
const PROD_API = client('production', 'api.client');
const UAT_OTHER = client('uat', 'other.client');

const ANY: AclEntry = { kind: 'any' };
const API_ANYWHERE: AclEntry = { kind: 'client', clientId: 'api.client' };
const API_IN_UAT: AclEntry = {
  kind: 'environment-client',
  environment: 'uat',
  clientId: 'api.client',
};
const OTHER_IN_PROD: AclEntry = {
  kind: 'environment-client',
  environment: 'production',
  clientId: 'other.client',
};

describe('aclEntryMatches', () => {
  it.each<[string, AclEntry, ClientConfig, boolean]>([
    ['* / uat api.client', ANY, UAT_API, true],
    ['* / production api.client', ANY, PROD_API, true],
    ['* / uat other.client', ANY, UAT_OTHER, true],
    ['api.client / uat api.client', API_ANYWHERE, UAT_API, true],
    ['api.client / production api.client', API_ANYWHERE, PROD_API, true],
    ['api.client / uat other.client', API_ANYWHERE, UAT_OTHER, false],
    ['uat/api.client / uat api.client', API_IN_UAT, UAT_API, true],
    ['uat/api.client / production api.client', API_IN_UAT, PROD_API, false],
    ['uat/api.client / uat other.client', API_IN_UAT, UAT_OTHER, false],
    ['production/other.client / uat other.client', OTHER_IN_PROD, UAT_OTHER, false],
    ['production/other.client / production api.client', OTHER_IN_PROD, PROD_API, false],
  ])('%s → %s', (_name, entry, target, expected) => {
    expect(aclEntryMatches(entry, target)).toBe(expected);
  });
});

describe('isCallerAllowed', () => {
  it.each<[string, AclEntry[], ClientConfig, boolean]>([
    ['no entries', [], UAT_API, false],
    ['only non-matching entries', [OTHER_IN_PROD, API_IN_UAT], PROD_API, false],
    ['one matching entry among others', [OTHER_IN_PROD, API_IN_UAT], UAT_API, true],
    ['a wildcard after a non-matching entry', [OTHER_IN_PROD, ANY], UAT_OTHER, true],
  ])('%s → %s', (_name, entries, target, expected) => {
    expect(isCallerAllowed(caller(entries), target)).toBe(expected);
  });
});
