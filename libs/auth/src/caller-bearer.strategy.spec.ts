import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { ConfigService, loadRuntimeSettings, parseServiceConfig } from '@app/config';
import { CallerBearerStrategy } from './caller-bearer.strategy';
import { CallerRegistry } from './caller-registry';

const KEY = 'bearer-strategy-key-0123456789';
const sha256 = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

function strategy(): CallerBearerStrategy {
  const text = stringify({
    environments: { uat: { tokenUrl: 'https://identity.example/connect/token' } },
    clients: [{ clientId: 'api.client', environment: 'uat', secretEnv: 'API_SECRET' }],
    callers: [{ name: 'deals-service', keySha256: sha256(KEY) }],
  });
  const config = new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
    service: parseServiceConfig(text, 'test.yaml'),
    secrets: new Map([['uat/api.client', 'not-used']]),
  });
  return new CallerBearerStrategy(new CallerRegistry(config));
}

const withAuthorization = (authorization?: string): { headers: Record<string, string> } => ({
  headers: authorization === undefined ? {} : { authorization },
});

describe('CallerBearerStrategy (passport-http-bearer without passport)', () => {
  const sut = strategy();

  it.each([`Bearer ${KEY}`, `bearer ${KEY}`, `BEARER ${KEY}`])(
    'finds the caller of a known key (%s: the scheme is case-insensitive)',
    (header) => {
      expect(sut.authenticate(withAuthorization(header))?.name).toBe('deals-service');
    },
  );

  it.each([
    ['no header', undefined],
    ['an unknown key', 'Bearer not-a-known-key-0123456789'],
    ['another scheme', `Basic ${KEY}`],
    ['no key', 'Bearer'],
    ['two spaces', `Bearer  ${KEY}`],
    ['a third part', `Bearer ${KEY} extra`],
    ['an empty header', ''],
  ])('finds no caller for %s', (_name, header) => {
    expect(sut.authenticate(withAuthorization(header))).toBeUndefined();
  });

  it('keeps no state between requests (each attempt is its own object)', () => {
    expect(sut.authenticate(withAuthorization(`Bearer ${KEY}`))?.name).toBe('deals-service');
    expect(sut.authenticate(withAuthorization('Bearer wrong-key-0123456789'))).toBeUndefined();
    expect(sut.authenticate(withAuthorization(`Bearer ${KEY}`))?.name).toBe('deals-service');
  });
});
