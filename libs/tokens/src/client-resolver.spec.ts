import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { Caller } from '@app/auth';
import { ConfigService, loadRuntimeSettings, parseServiceConfig } from '@app/config';
import { InvalidRequestError, UnknownClientError } from '@app/errors';
import { ClientResolver } from './client-resolver';

const digest = (name: string): string => createHash('sha256').update(name).digest('hex');
const secretEnv = 'SECRET';

const CONFIG_TEXT = stringify({
  environments: {
    uat: { tokenUrl: 'https://uat.example/connect/token' },
    production: { tokenUrl: 'https://prod.example/connect/token' },
    eu: { tokenUrl: 'https://eu.example/connect/token' },
  },
  clients: [
    { clientId: 'shared.client', environment: 'uat', secretEnv },
    { clientId: 'shared.client', environment: 'production', secretEnv },
    { clientId: 'shared.client', environment: 'eu', secretEnv },
    { clientId: 'uat-only.client', environment: 'uat', secretEnv },
  ],
  callers: [
    { name: 'everything', keySha256: digest('everything'), clients: ['*'] },
    { name: 'shared-anywhere', keySha256: digest('shared-anywhere'), clients: ['shared.client'] },
    {
      name: 'uat-only',
      keySha256: digest('uat-only'),
      clients: ['uat/shared.client', 'uat/uat-only.client'],
    },
    {
      name: 'prod-and-eu',
      keySha256: digest('prod-and-eu'),
      clients: ['production/shared.client', 'eu/shared.client'],
    },
    { name: 'nothing', keySha256: digest('nothing') },
  ],
});

const SAME_MESSAGE = 'No such client is available to this caller.';

describe('ClientResolver', () => {
  let config: ConfigService;
  let sut: ClientResolver;
  const caller = (name: string): Caller => {
    const found = config.service.callers.find((c) => c.name === name);
    if (!found) throw new Error(`no caller ${name}`);
    return found;
  };

  beforeEach(() => {
    const service = parseServiceConfig(CONFIG_TEXT, 'test.yaml');
    config = new ConfigService(loadRuntimeSettings({ TOKEN_VENDOR_CONFIG: 'test.yaml' }), {
      service,
      secrets: new Map(service.clients.map((c) => [c.key, 'secret'])),
    });
    sut = new ClientResolver(config);
  });

  it.each<[string, string, string | undefined, string]>([
    ['everything', 'uat-only.client', undefined, 'uat/uat-only.client'],
    ['everything', 'shared.client', 'production', 'production/shared.client'],
    ['shared-anywhere', 'shared.client', 'eu', 'eu/shared.client'],
    // Ambiguity counts only environments the caller may use:
    ['uat-only', 'shared.client', undefined, 'uat/shared.client'],
    ['uat-only', 'shared.client', 'uat', 'uat/shared.client'],
    ['prod-and-eu', 'shared.client', 'eu', 'eu/shared.client'],
  ])('%s asking for %s in %s gets %s', (who, clientId, environment, key) => {
    expect(sut.resolve(caller(who), clientId, environment).key).toBe(key);
  });

  it.each<[string, string, string | undefined, string]>([
    ['a client id with a slash', 'uat/shared.client', undefined, 'The client id is malformed.'],
    ['a client id with a space', 'shared client', 'uat', 'The client id is malformed.'],
    ['an empty client id', '', undefined, 'The client id is malformed.'],
    ['a client id of 201 characters', 'x'.repeat(201), undefined, 'The client id is malformed.'],
    ['an unknown environment', 'shared.client', 'staging', 'Unknown environment.'],
    ['a malformed environment', 'shared.client', '../uat', 'Unknown environment.'],
    ['an empty environment', 'shared.client', '', 'Unknown environment.'],
    [
      'an id in three environments, all allowed',
      'shared.client',
      undefined,
      'The client exists in several environments (uat, production, eu); choose one with ?environment=.',
    ],
  ])('answers invalid_request for %s', (_name, clientId, environment, message) => {
    const call = (): unknown => sut.resolve(caller('everything'), clientId, environment);

    expect(call).toThrow(InvalidRequestError);
    expect(call).toThrow(message);
  });

  it('counts only the allowed environments when naming an ambiguity', () => {
    expect(() => sut.resolve(caller('prod-and-eu'), 'shared.client', undefined)).toThrow(
      'The client exists in several environments (production, eu); choose one with ?environment=.',
    );
  });

  it.each<[string, string, string, string | undefined, 'not_configured' | 'not_allowed']>([
    ['an id configured nowhere', 'everything', 'nobody.client', undefined, 'not_configured'],
    [
      'an id configured nowhere, with environment',
      'everything',
      'nobody.client',
      'uat',
      'not_configured',
    ],
    [
      'an id not in that environment',
      'everything',
      'uat-only.client',
      'production',
      'not_configured',
    ],
    ['a caller with no entries', 'nothing', 'shared.client', undefined, 'not_allowed'],
    [
      'a caller with no entries, with environment',
      'nothing',
      'shared.client',
      'uat',
      'not_allowed',
    ],
    ['an environment outside the ACL', 'uat-only', 'shared.client', 'production', 'not_allowed'],
    ['a client outside the ACL', 'shared-anywhere', 'uat-only.client', undefined, 'not_allowed'],
    [
      'a client outside the ACL, with environment',
      'prod-and-eu',
      'uat-only.client',
      'uat',
      'not_allowed',
    ],
  ])('answers unknown_client for %s (%s), reason %s', (_n, who, clientId, environment, reason) => {
    let err: unknown;
    try {
      sut.resolve(caller(who), clientId, environment);
    } catch (e) {
      err = e;
    }

    expect(err).toBeInstanceOf(UnknownClientError);
    const { reason: actual, message, status, code } = err as UnknownClientError;
    expect({ reason: actual, message, status, code }).toEqual({
      reason,
      message: SAME_MESSAGE,
      status: 404,
      code: 'unknown_client',
    });
  });

  describe('answers it has given before (kept per configuration)', () => {
    it('answers the same client again, with and without environment', () => {
      const first = sut.resolve(caller('uat-only'), 'uat-only.client', undefined);
      expect(sut.resolve(caller('uat-only'), 'uat-only.client', undefined)).toBe(first);
      const production = sut.resolve(caller('everything'), 'shared.client', 'production');
      expect(production.environment).toBe('production');
      expect(sut.resolve(caller('everything'), 'shared.client', 'eu').environment).toBe('eu');
      expect(() => sut.resolve(caller('everything'), 'shared.client', undefined)).toThrow(
        InvalidRequestError,
      );
      // An empty environment is not "no environment": it stays a bad request.
      for (const environment of ['', undefined, '']) {
        const ask = () => sut.resolve(caller('uat-only'), 'uat-only.client', environment);
        if (environment === undefined) expect(ask().environment).toBe('uat');
        else expect(ask).toThrow(InvalidRequestError);
      }
    });

    it('forgets them when the configuration is reloaded: a withdrawn right is refused at once', () => {
      const who = caller('shared-anywhere');
      expect(sut.resolve(who, 'shared.client', 'uat').environment).toBe('uat');
      const narrowed = CONFIG_TEXT.replace(
        'clients:\n      - shared.client\n',
        'clients:\n      - eu/shared.client\n',
      );
      expect(narrowed).not.toBe(CONFIG_TEXT);
      const service = parseServiceConfig(narrowed, 'test.yaml');
      config.replace({ service, secrets: config.current.secrets });
      const reloaded = config.service.callers.find((c) => c.name === 'shared-anywhere')!;
      expect(() => sut.resolve(reloaded, 'shared.client', 'uat')).toThrow(UnknownClientError);
      expect(sut.resolve(reloaded, 'shared.client', undefined).environment).toBe('eu');
    });

    it('forgets them when the callers alone are replaced (caller key files re-read)', () => {
      expect(sut.resolve(caller('everything'), 'uat-only.client', undefined).clientId).toBe(
        'uat-only.client',
      );
      config.replaceCallers(
        config.service.callers.map((c) => (c.name === 'everything' ? { ...c, clients: [] } : c)),
      );
      expect(() => sut.resolve(caller('everything'), 'uat-only.client', undefined)).toThrow(
        UnknownClientError,
      );
    });
  });
});
