import { classifyErrorAnswer as sut, type ErrorAnswer } from './error-response.classifier';

const err = (code: string, extra: Record<string, string> = {}): string =>
  JSON.stringify({ error: code, ...extra });

describe('classifyErrorAnswer', () => {
  it.each<[number, string, ErrorAnswer]>([
    [400, err('invalid_client'), { kind: 'rejected', rejection: 'invalid_client' }],
    [401, err('invalid_client'), { kind: 'rejected', rejection: 'invalid_client' }],
    [400, err('unauthorized_client'), { kind: 'rejected', rejection: 'unauthorized_client' }],
    [400, err('invalid_scope'), { kind: 'rejected', rejection: 'invalid_scope' }],
    [400, err('invalid_grant'), { kind: 'rejected', rejection: 'invalid_grant' }],
    [400, err('invalid_request'), { kind: 'rejected', rejection: 'invalid_request' }],
    [400, err('unsupported_grant_type'), { kind: 'rejected', rejection: 'unsupported_grant_type' }],
    [400, err('access_denied'), { kind: 'rejected', rejection: 'access_denied' }],
    [
      400,
      err('invalid_scope', { error_description: 'nope' }),
      { kind: 'rejected', rejection: 'invalid_scope' },
    ],
    [401, '', { kind: 'rejected', rejection: 'invalid_client' }],
    [401, '<html>Unauthorized</html>', { kind: 'rejected', rejection: 'invalid_client' }],
    [401, err('invalid_token'), { kind: 'rejected', rejection: 'invalid_client' }],
    [400, '', { kind: 'unexpected' }],
    [400, err('something_else'), { kind: 'unexpected' }],
    [400, '{"error":42}', { kind: 'unexpected' }],
    [403, err('access_denied'), { kind: 'unexpected' }],
    [404, '', { kind: 'unexpected' }],
    [405, '', { kind: 'unexpected' }],
    [302, '', { kind: 'unexpected' }],
    [201, '', { kind: 'unexpected' }],
    [429, '', { kind: 'retryable' }],
    [500, err('invalid_client'), { kind: 'retryable' }],
    [502, '<html>Bad Gateway</html>', { kind: 'retryable' }],
    [503, '', { kind: 'retryable' }],
    [504, '', { kind: 'retryable' }],
  ])('HTTP %i with body %p → %o', (status, body, expected) => {
    expect(sut(status, body)).toEqual(expected);
  });
});
