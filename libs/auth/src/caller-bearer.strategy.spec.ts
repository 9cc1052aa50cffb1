import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { ConfigService, loadRuntimeSettings, parseServiceConfig } from '@app/config';
import {
  CallerBearerStrategy,
  looksLikeJwt,
  type BearerCredential,
} from './caller-bearer.strategy';
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

const nameOf = (credential: BearerCredential | undefined): string | undefined =>
  credential?.kind === 'key' ? credential.caller.name : undefined;

const withAuthorization = (authorization?: string): { headers: Record<string, string> } => ({
  headers: authorization === undefined ? {} : { authorization },
});

describe('CallerBearerStrategy (passport-http-bearer without passport)', () => {
  const sut = strategy();

  it.each([`Bearer ${KEY}`, `bearer ${KEY}`, `BEARER ${KEY}`])(
    'finds the caller of a known key (%s: the scheme is case-insensitive)',
    (header) => {
      expect(nameOf(sut.authenticate(withAuthorization(header)))).toBe('deals-service');
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
    expect(nameOf(sut.authenticate(withAuthorization(`Bearer ${KEY}`)))).toBe('deals-service');
    expect(sut.authenticate(withAuthorization('Bearer wrong-key-0123456789'))).toBeUndefined();
    expect(nameOf(sut.authenticate(withAuthorization(`Bearer ${KEY}`)))).toBe('deals-service');
  });

  it('hands a JWT over as a token to verify, without looking it up among the key digests', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    expect(sut.authenticate(withAuthorization(`Bearer ${jwt}`))).toEqual({
      kind: 'jwt',
      token: jwt,
    });
  });
});

describe('looksLikeJwt', () => {
  it.each([
    ['a compact JWS', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln', true],
    ['an unsigned one (alg none)', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', true],
    ['a caller key', 'tvk_3q2-7wEXAMPLEexampleEXAMPLEexample0123456', false],
    ['two parts', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0', false],
    ['a JWE (five parts)', 'eyJhbGciOiJSU0EifQ.a.b.c.d', false],
    ['not starting with a JSON object', 'abc.def.ghi', false],
  ])('%s: %s', (_name, bearer, expected) => {
    expect(looksLikeJwt(bearer)).toBe(expected);
  });
});
