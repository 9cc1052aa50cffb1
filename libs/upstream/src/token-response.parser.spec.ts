import { UpstreamUnavailableError } from '@app/errors';
import { fakeJwt } from '../test/fake-jwt';
import { MAX_ACCESS_TOKEN_LENGTH, parseTokenResponse as sut } from './token-response.parser';

const REQUESTED_AT = Date.UTC(2026, 10, 27, 10, 0, 0);
const TOKEN = fakeJwt({ exp: REQUESTED_AT / 1000 + 3600, client_id: 'api-fake-test.client' });
const body = (fields: Record<string, unknown>): string =>
  JSON.stringify({ access_token: TOKEN, token_type: 'Bearer', expires_in: 1200, ...fields });

describe('parseTokenResponse', () => {
  it('turns a CAS answer into an IssuedToken whose expiry counts from the request', () => {
    expect(sut(body({}), { requestedAt: REQUESTED_AT, requestedScope: 'deals-read' })).toEqual({
      accessToken: TOKEN,
      tokenType: 'Bearer',
      scope: 'deals-read',
      requestedAt: REQUESTED_AT,
      expiresAt: REQUESTED_AT + 1_200_000,
      lifetimeSeconds: 1200,
    });
  });

  it.each<[string, Record<string, unknown>, string | undefined, string | undefined]>([
    [
      'the granted scope over the requested one',
      { scope: 'deals-read' },
      'deals-read x',
      'deals-read',
    ],
    ['the requested scope when none is granted', {}, 'deals-read', 'deals-read'],
    ['the requested scope when the granted one is null', { scope: null }, 'a', 'a'],
    ['no scope at all', {}, undefined, undefined],
  ])('reports %s', (_case, fields, requestedScope, expected) => {
    const token = sut(body(fields), {
      requestedAt: REQUESTED_AT,
      ...(requestedScope ? { requestedScope } : {}),
    });
    expect(token.scope).toBe(expected);
  });

  it.each(['Bearer', 'bearer', 'BEARER'])('accepts token_type %p as Bearer', (tokenType) => {
    expect(sut(body({ token_type: tokenType }), { requestedAt: REQUESTED_AT }).tokenType).toBe(
      'Bearer',
    );
  });

  it.each<[string, Record<string, unknown>, number]>([
    ['number 1200', { expires_in: 1200 }, 1200],
    ['string "1200"', { expires_in: '1200' }, 1200],
    ['3.5', { expires_in: 3.5 }, 3],
    ['"3.5"', { expires_in: '3.5' }, 3],
    ['1e12 (opaque token)', { expires_in: 1e12, access_token: 'opaque' }, 86_400],
    ['missing (JWT exp an hour away)', { expires_in: undefined }, 3600],
    ['null (JWT exp an hour away)', { expires_in: null }, 3600],
  ])('applies the expires_in rule to %s', (_case, fields, lifetime) => {
    const token = sut(body(fields), { requestedAt: REQUESTED_AT });
    expect(token.lifetimeSeconds).toBe(lifetime);
    expect(token.expiresAt).toBe(REQUESTED_AT + lifetime * 1000);
  });

  it('uses the 300 s default for an opaque token without expires_in', () => {
    const answer = JSON.stringify({ access_token: 'opaque', token_type: 'Bearer' });
    expect(sut(answer, { requestedAt: REQUESTED_AT }).lifetimeSeconds).toBe(300);
  });

  it('takes the JWT exp when it is shorter than expires_in', () => {
    const shortJwt = fakeJwt({ exp: REQUESTED_AT / 1000 + 60 });
    const token = sut(body({ access_token: shortJwt, expires_in: 1200 }), {
      requestedAt: REQUESTED_AT,
    });
    expect(token.lifetimeSeconds).toBe(60);
  });

  it('clamps JSON 1e400 (Infinity) like any absurd expires_in', () => {
    const answer = `{"access_token":"opaque","token_type":"Bearer","expires_in":1e400}`;
    expect(sut(answer, { requestedAt: REQUESTED_AT }).lifetimeSeconds).toBe(86_400);
  });

  it('accepts an access token of exactly the maximum length', () => {
    const long = 'a'.repeat(MAX_ACCESS_TOKEN_LENGTH);
    expect(sut(body({ access_token: long }), { requestedAt: REQUESTED_AT }).accessToken).toBe(long);
  });

  it.each<[string, string]>([
    ['an HTML page', '<html><body>IDP-BODY-MARKER Service Unavailable</body></html>'],
    ['truncated JSON', body({}).slice(0, 40)],
    ['an empty body', ''],
    ['JSON null', 'null'],
    ['a JSON array', `[${body({})}]`],
    ['a JSON string', '"IDP-BODY-MARKER"'],
    ['no access_token', body({ access_token: undefined })],
    ['an empty access_token', body({ access_token: '' })],
    ['a numeric access_token', body({ access_token: 12345 })],
    ['an access_token with a space', body({ access_token: 'abc def' })],
    ['an access_token with a newline', body({ access_token: 'abc\ndef' })],
    ['an access_token with non-ASCII', body({ access_token: 'abcé' })],
    [
      'an access_token over 16 KiB',
      body({ access_token: 'a'.repeat(MAX_ACCESS_TOKEN_LENGTH + 1) }),
    ],
    ['token_type "mac"', body({ token_type: 'mac' })],
    ['token_type "DPoP"', body({ token_type: 'DPoP' })],
    ['token_type missing', body({ token_type: undefined })],
    ['token_type not a string', body({ token_type: 1 })],
    ['a scope that is not a string', body({ scope: ['deals-read'] })],
    ['expires_in "abc"', body({ expires_in: 'abc' })],
    ['expires_in true', body({ expires_in: true })],
    ['expires_in 0', body({ expires_in: 0 })],
    ['expires_in -1', body({ expires_in: -1 })],
  ])('refuses %s as bad_answer, without quoting the body', (_case, answer) => {
    let thrown: unknown;
    try {
      sut(answer, { requestedAt: REQUESTED_AT });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UpstreamUnavailableError);
    const error = thrown as UpstreamUnavailableError;
    expect(error.reason).toBe('bad_answer');
    expect(error.message).not.toContain('IDP-BODY-MARKER');
    expect(error.message).not.toContain(TOKEN);
  });
});
