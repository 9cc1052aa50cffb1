import { basicAuthorization, buildTokenHttpRequest, formUrlEncode } from './client-authentication';
import type { TokenRequest } from './token-request';

/** Undoes the client side of RFC 6749 §2.3.1, as an IdP does. */
function decodeBasic(header: string): [string, string] {
  const credentials = Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  const formDecode = (value: string): string => decodeURIComponent(value.replace(/\+/g, ' '));
  return [formDecode(credentials.slice(0, colon)), formDecode(credentials.slice(colon + 1))];
}

describe('formUrlEncode', () => {
  it.each<[string, string]>([
    ['plain.id_0-9*', 'plain.id_0-9*'],
    ['a:b', 'a%3Ab'],
    ['100%', '100%25'],
    ['a b', 'a+b'],
    ['a+b', 'a%2Bb'],
    ['x&y=z', 'x%26y%3Dz'],
    ["~!'()", '%7E%21%27%28%29'],
    ['é', '%C3%A9'],
    ['密', '%E5%AF%86'],
  ])('encodes %p as %p', (value, expected) => {
    expect(formUrlEncode(value)).toBe(expected);
  });
});

describe('basicAuthorization', () => {
  // [clientId, secret, the credentials before base64, the exact header]
  it.each<[string, string, string, string]>([
    ['client', 'secret', 'client:secret', 'Basic Y2xpZW50OnNlY3JldA=='],
    ['a:b', 'c:d', 'a%3Ab:c%3Ad', 'Basic YSUzQWI6YyUzQWQ='],
    ['100%', 'p%20', '100%25:p%2520', 'Basic MTAwJTI1OnAlMjUyMA=='],
    ['my client', 'a b+c', 'my+client:a+b%2Bc', 'Basic bXkrY2xpZW50OmErYiUyQmM='],
    [
      'café',
      '密码',
      'caf%C3%A9:%E5%AF%86%E7%A0%81',
      'Basic Y2FmJUMzJUE5OiVFNSVBRiU4NiVFNyVBMCU4MQ==',
    ],
  ])('encodes (%p, %p) per RFC 6749 §2.3.1', (clientId, secret, credentials, header) => {
    const sut = basicAuthorization(clientId, secret);
    expect(sut).toBe(header);
    expect(Buffer.from(sut.slice('Basic '.length), 'base64').toString('utf8')).toBe(credentials);
    expect(decodeBasic(sut)).toEqual([clientId, secret]);
  });
});

describe('buildTokenHttpRequest', () => {
  const base: TokenRequest = {
    environment: 'uat',
    clientId: 'api-fake-test.client',
    secret: 's3cr&t=x',
    authMethod: 'client_secret_post',
    tokenUrl: 'https://idp.example/connect/token',
    timeoutMs: 1000,
  };

  it.each<[string, Partial<TokenRequest>, string]>([
    [
      'post, no scope',
      {},
      'grant_type=client_credentials&client_id=api-fake-test.client&client_secret=s3cr%26t%3Dx',
    ],
    [
      'post, with scope',
      { scope: 'deals-read permissions-read' },
      'grant_type=client_credentials&scope=deals-read+permissions-read&client_id=api-fake-test.client&client_secret=s3cr%26t%3Dx',
    ],
    ['basic, no scope', { authMethod: 'client_secret_basic' }, 'grant_type=client_credentials'],
    [
      'basic, with scope',
      { authMethod: 'client_secret_basic', scope: 'deals-read' },
      'grant_type=client_credentials&scope=deals-read',
    ],
  ])('builds the form body for %s', (_case, overrides, expectedBody) => {
    const sut = buildTokenHttpRequest({ ...base, ...overrides });
    expect(sut.body).toBe(expectedBody);
    expect(sut.headers['Content-Type']).toBe('application/x-www-form-urlencoded');
    expect(sut.headers.Accept).toBe('application/json');
  });

  it('sends credentials in the header only with client_secret_basic', () => {
    const basic = buildTokenHttpRequest({ ...base, authMethod: 'client_secret_basic' });
    expect(basic.headers.Authorization).toBe(basicAuthorization(base.clientId, base.secret));
    expect(basic.body).not.toContain('client_secret');
    expect(basic.body).not.toContain('client_id');

    const post = buildTokenHttpRequest(base);
    expect(post.headers.Authorization).toBeUndefined();
  });
});
