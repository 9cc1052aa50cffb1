import {
  basicAuthorization,
  extractClientCredentials,
  formUrlDecode,
  recordedAuthMethod,
} from './client-authentication';

const form = (params: Record<string, string> = {}): URLSearchParams => new URLSearchParams(params);
const basicRaw = (text: string): string => `Basic ${Buffer.from(text, 'utf8').toString('base64')}`;

describe('basicAuthorization', () => {
  it('form-urlencodes id and secret before base64 (RFC 6749 §2.3.1)', () => {
    expect(basicAuthorization('demo-basic.client', 'demo:basic%secret-not-real')).toBe(
      basicRaw('demo-basic.client:demo%3Abasic%25secret-not-real'),
    );
    expect(basicAuthorization('a b', 'ü+')).toBe(basicRaw('a+b:%C3%BC%2B'));
  });
});

describe('extractClientCredentials', () => {
  it.each([
    ['demo-basic.client', 'demo:basic%secret-not-real'],
    ['id:with:colons', 'secret:with:colons'],
    ['ünïcödé-客户', 'sécret ✓ with spaces'],
    ['plus+sign', '100%+sure'],
  ])('round-trips Basic credentials %s / %s', (clientId, secret) => {
    expect(extractClientCredentials(basicAuthorization(clientId, secret), form())).toEqual({
      method: 'client_secret_basic',
      clientId,
      secret,
    });
  });

  it('decodes "+" as a space in Basic credentials', () => {
    expect(extractClientCredentials(basicRaw('my+client:my+secret'), form())).toEqual({
      method: 'client_secret_basic',
      clientId: 'my client',
      secret: 'my secret',
    });
  });

  it('accepts the scheme name in any case', () => {
    const header = basicAuthorization('a', 'b').replace('Basic', 'bAsIc');
    expect(extractClientCredentials(header, form())).toMatchObject({
      method: 'client_secret_basic',
    });
  });

  it('marks a secret that was not form-encoded as malformed, keeping the id', () => {
    expect(
      extractClientCredentials(basicRaw('demo-basic.client:demo:basic%secret'), form()),
    ).toEqual({
      method: 'malformed_basic',
      clientId: 'demo-basic.client',
    });
  });

  it.each([
    ['no colon', basicRaw('justanid')],
    ['an empty id', basicRaw(':secret')],
    ['not base64', 'Basic ***'],
    ['nothing after the scheme', 'Basic'],
  ])('marks Basic with %s as malformed', (_name, header) => {
    expect(extractClientCredentials(header, form())).toEqual({ method: 'malformed_basic' });
  });

  it('reads client_secret_post', () => {
    expect(
      extractClientCredentials(undefined, form({ client_id: 'a:b', client_secret: '%' })),
    ).toEqual({
      method: 'client_secret_post',
      clientId: 'a:b',
      secret: '%',
    });
  });

  it('reports both methods at once as multiple', () => {
    expect(
      extractClientCredentials(
        basicAuthorization('a', 'b'),
        form({ client_id: 'a', client_secret: 'b' }),
      ),
    ).toEqual({ method: 'multiple', clientId: 'a' });
    expect(
      extractClientCredentials(basicAuthorization('a', 'b'), form({ client_id: 'c' })),
    ).toEqual({
      method: 'multiple',
      clientId: 'a',
    });
  });

  it('reports a bare client_id, or nothing, as none', () => {
    expect(extractClientCredentials(undefined, form({ client_id: 'a' }))).toEqual({
      method: 'none',
      clientId: 'a',
    });
    expect(extractClientCredentials(undefined, form())).toEqual({
      method: 'none',
      clientId: undefined,
    });
  });

  it('ignores other Authorization schemes', () => {
    expect(
      extractClientCredentials('Bearer abc', form({ client_id: 'a', client_secret: 'b' })),
    ).toEqual({ method: 'client_secret_post', clientId: 'a', secret: 'b' });
  });
});

describe('recordedAuthMethod', () => {
  it('records a malformed Basic header as client_secret_basic', () => {
    expect(recordedAuthMethod({ method: 'malformed_basic' })).toBe('client_secret_basic');
    expect(recordedAuthMethod({ method: 'none' })).toBe('none');
  });
});

describe('formUrlDecode', () => {
  it('decodes and refuses malformed escapes', () => {
    expect(formUrlDecode('a+b%3Ac')).toBe('a b:c');
    expect(formUrlDecode('100%')).toBeUndefined();
    expect(formUrlDecode('%E0%A4%A')).toBeUndefined();
  });
});
