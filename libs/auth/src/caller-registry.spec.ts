import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { ConfigService, loadRuntimeSettings, parseServiceConfig } from '@app/config';
import { CallerRegistry } from './caller-registry';

const sha256 = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

const DEALS_KEYS = ['deals-key-current-0123456789', 'deals-key-previous-0123456789'];
const OPS_KEY = 'ops-key-0123456789';

function configWith(callers: object[]): ConfigService {
  const text = stringify({
    environments: { uat: { tokenUrl: 'https://identity.example/connect/token' } },
    clients: [{ clientId: 'api.client', environment: 'uat', secretEnv: 'API_SECRET' }],
    callers,
  });
  return new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
    service: parseServiceConfig(text, 'test.yaml'),
    secrets: new Map([['uat/api.client', 'not-used']]),
  });
}

const CALLERS = [
  // One digest upper-case: hex case must not matter.
  {
    name: 'deals-service',
    keySha256: [sha256(DEALS_KEYS[0]), sha256(DEALS_KEYS[1]).toUpperCase()],
  },
  { name: 'ops', keySha256: sha256(OPS_KEY), clients: ['*'], admin: true },
];

describe('CallerRegistry', () => {
  let config: ConfigService;
  let sut: CallerRegistry;

  beforeEach(() => {
    config = configWith(CALLERS);
    sut = new CallerRegistry(config);
  });

  it.each([
    ['the current key of deals-service', DEALS_KEYS[0], 'deals-service'],
    ['the previous key of deals-service', DEALS_KEYS[1], 'deals-service'],
    ['the key of ops', OPS_KEY, 'ops'],
  ])('authenticates %s', (_name, key, caller) => {
    expect(sut.authenticate(key)?.name).toBe(caller);
  });

  it('returns the configured caller itself', () => {
    expect(sut.authenticate(OPS_KEY)).toBe(config.service.callers[1]);
  });

  it.each([
    ['an unknown key', 'not-a-known-key'],
    ['an empty key', ''],
    ['a key differing in its last character', `${OPS_KEY.slice(0, -1)}X`],
    ['a key differing in its first character', `X${OPS_KEY.slice(1)}`],
    ['a key with one character more', `${OPS_KEY}9`],
    ['a key with one character less', OPS_KEY.slice(0, -1)],
    ['a key in another case', OPS_KEY.toUpperCase()],
    ['a key with a trailing newline', `${OPS_KEY}\n`],
    ['the digest instead of the key', sha256(OPS_KEY)],
  ])('does not authenticate %s', (_name, key) => {
    expect(sut.authenticate(key)).toBeUndefined();
  });

  it('follows a reload: a removed key stops working, a new one works', () => {
    const newKey = 'deals-key-next-0123456789';
    const reloaded = configWith([{ name: 'deals-service', keySha256: [sha256(newKey)] }]);

    config.replace(reloaded.current);

    expect(sut.authenticate(DEALS_KEYS[0])).toBeUndefined();
    expect(sut.authenticate(newKey)?.name).toBe('deals-service');
  });
});
