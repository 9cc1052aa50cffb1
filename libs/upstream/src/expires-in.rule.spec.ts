import { UpstreamUnavailableError } from '@app/errors';
import { fakeJwt } from '../test/fake-jwt';
import {
  DEFAULT_LIFETIME_SECONDS,
  MAX_LIFETIME_SECONDS,
  resolveLifetimeSeconds as sut,
} from './expires-in.rule';

const REQUESTED_AT = Date.UTC(2026, 10, 27, 10, 0, 0);
const NOW_S = REQUESTED_AT / 1000;
const OPAQUE = 'opaque-reference-token';

describe('resolveLifetimeSeconds (the expires_in rule)', () => {
  it('has the documented constants', () => {
    expect(DEFAULT_LIFETIME_SECONDS).toBe(300);
    expect(MAX_LIFETIME_SECONDS).toBe(86_400);
  });

  it.each<[string, unknown, string, number]>([
    ['a number', 1200, OPAQUE, 1200],
    ['a numeric string', '1200', OPAQUE, 1200],
    ['a fraction, rounded down', 3.5, OPAQUE, 3],
    ['a fractional string, rounded down', '3.5', OPAQUE, 3],
    ['1.999 rounded down', 1.999, OPAQUE, 1],
    ['an absurd number, clamped', 1e12, OPAQUE, 86_400],
    ['Infinity (JSON 1e400), clamped', Infinity, OPAQUE, 86_400],
    ['an absurd numeric string, clamped', '99999999999999999999', OPAQUE, 86_400],
    ['exactly the maximum', 86_400, OPAQUE, 86_400],
    ['missing, opaque token: the default', undefined, OPAQUE, 300],
    ['null, opaque token: the default', null, OPAQUE, 300],
    ['missing, JWT exp: exp - requestedAt', undefined, fakeJwt({ exp: NOW_S + 600 }), 600],
    ['null, JWT exp with a fraction: rounded down', null, fakeJwt({ exp: NOW_S + 600.9 }), 600],
    ['missing, JWT exp beyond a day: clamped', undefined, fakeJwt({ exp: NOW_S + 1e9 }), 86_400],
    ['missing, JWT without exp: the default', undefined, fakeJwt({ sub: 'x' }), 300],
    ['JWT exp shorter than expires_in: the JWT wins', 1200, fakeJwt({ exp: NOW_S + 600 }), 600],
    ['expires_in shorter than JWT exp: expires_in wins', 300, fakeJwt({ exp: NOW_S + 600 }), 300],
    ['JWT exp that is not a number is ignored', 1200, fakeJwt({ exp: String(NOW_S + 5) }), 1200],
    ['a dotted token that is not a JWT is opaque', 1200, 'abc.!!!.def', 1200],
    ['an encrypted (5-part) JWT is opaque', 1200, 'a.b.c.d.e', 1200],
  ])('accepts %s', (_case, expiresIn, token, expected) => {
    expect(sut(expiresIn, token, REQUESTED_AT)).toBe(expected);
  });

  it.each<[string, unknown, string]>([
    ['zero', 0, OPAQUE],
    ['"0"', '0', OPAQUE],
    ['negative', -1, OPAQUE],
    ['below one second (0.5 rounds to 0)', 0.5, OPAQUE],
    ['-Infinity', -Infinity, OPAQUE],
    ['a non-numeric string', 'abc', OPAQUE],
    ['an empty string', '', OPAQUE],
    ['a negative string', '-5', OPAQUE],
    ['an exponent string', '1e3', OPAQUE],
    ['a padded string', ' 12', OPAQUE],
    ['a boolean', true, OPAQUE],
    ['an object', {}, OPAQUE],
    ['an array', [1200], OPAQUE],
    ['a JWT already expired by exp', 1200, fakeJwt({ exp: NOW_S - 1 })],
    ['a JWT expiring right now, expires_in missing', undefined, fakeJwt({ exp: NOW_S })],
  ])('rejects %s as bad_answer', (_case, expiresIn, token) => {
    const attempt = (): number => sut(expiresIn, token, REQUESTED_AT);
    expect(attempt).toThrow(UpstreamUnavailableError);
    expect(attempt).toThrow(expect.objectContaining({ reason: 'bad_answer' }));
  });
});
