import {
  basicAuthorization,
  startIdentitySandbox,
  type RunningSandbox,
} from '@app/identity-sandbox';
import { ConfigService } from '@app/config';
import { tokenFingerprint } from '@app/observability';
import { AUDIT_TEXT_MAX_LENGTH } from '@app/audit';
import { httpRequest, type InProcessService, startService } from '../support';

/**
 * "No secret, caller key or access token is written to a log line" (README "Security and
 * failure behaviour", "Logs and metrics"), at LOG_LEVEL=debug (startService's default):
 * requests carrying every kind of secret a caller or an operator could send, plus the secrets
 * and tokens the service itself handles, and a scan of every line the service wrote.
 */
const SECRET_POST = 'redact-client-secret-post-0001-ZZZ';
const SECRET_BASIC = 'redact-client:secret basic+0002%ZZZ';
const WRONG_SECRET = 'redact-wrong-secret-0003-ZZZ';
const IDP_SIDE_SECRET = 'redact-idp-side-secret-0004-ZZZ';
const CALLER_KEY = 'redact-caller-key-0001-aaaaaaaaaaaaaaaaaaaa';
const ADMIN_KEY = 'redact-admin-key-0002-bbbbbbbbbbbbbbbbbbbbbb';
const UNKNOWN_KEY = 'redact-unknown-key-0003-cccccccccccccccccccc';
const COOKIE_VALUE = 'redact-cookie-session-0004-dddddddddddd';
const API_KEY = 'redact-x-api-key-0005-eeeeeeeeeeeeeeeeeeee';
const QUERY_TOKEN = 'redact-query-access-token-0006-ffffffffff';
const BODY_SECRET = 'redact-body-client-secret-0007-gggggggggg';
const BODY_PASSWORD = 'redact-body-password-0008-hhhhhhhhhhhhh';
const BODY_TOKEN = 'redact-body-access-token-0009-iiiiiiiiiiii';
const PROXY_AUTH = 'redact-proxy-authorization-0010-jjjjjjjjj';

describe('log redaction (e2e, LOG_LEVEL=debug)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  const accessTokens = new Set<string>();
  const statuses: Record<string, number> = {};

  /** Every header a careless caller might send with a secret in it. */
  const secretHeaders = (key: string): Record<string, string> => ({
    Authorization: `Bearer ${key}`,
    Cookie: `session=${COOKIE_VALUE}; theme=dark`,
    'X-Api-Key': API_KEY,
    'Proxy-Authorization': `Basic ${PROXY_AUTH}`,
  });

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'redact.client', secret: SECRET_POST, scopes: ['deals-read'] },
        { clientId: 'basic.client', secret: SECRET_BASIC, scopes: ['deals-read'] },
        { clientId: 'rejected.client', secret: IDP_SIDE_SECRET, scopes: ['deals-read'] },
      ],
      expiresIn: 1200,
    });
    svc = await startService({
      scheduler: false,
      redis: true,
      logLevel: 'debug',
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: [
        { clientId: 'redact.client', environment: 'uat', secret: SECRET_POST, scope: 'deals-read' },
        {
          clientId: 'basic.client',
          environment: 'uat',
          secret: SECRET_BASIC,
          authMethod: 'client_secret_basic',
          // A file, not secretEnv: startService keeps secretEnv values out of process.env,
          // where POST /admin/reload would look for them.
        },
        { clientId: 'rejected.client', environment: 'uat', secret: WRONG_SECRET },
      ],
      callers: [
        { name: 'redact-caller', keys: [CALLER_KEY], clients: ['*'] },
        { name: 'redact-admin', keys: [ADMIN_KEY], clients: ['*'], admin: true },
      ],
    });

    const call = async (
      name: string,
      path: string,
      options: { method?: string; key?: string; body?: unknown } = {},
    ) => {
      const headers = secretHeaders(options.key ?? CALLER_KEY);
      if (options.body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await httpRequest(`${svc.url}${path}`, {
        method: options.method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      statuses[name] = res.status;
      const token = res.headers['content-type']?.toString().startsWith('application/json')
        ? (res.json() as { access_token?: unknown }).access_token
        : undefined;
      if (typeof token === 'string') accessTokens.add(token);
      return res;
    };

    // The key in the query is refused (it would end up in access logs and proxies' histories).
    await call('query access_token', `/tokens/redact.client?access_token=${QUERY_TOKEN}`);
    await call('served post', '/tokens/redact.client?environment=uat');
    await call('served basic', '/tokens/basic.client');
    await call('upstream rejected', '/tokens/rejected.client');
    await call('unknown key', '/tokens/redact.client', { key: UNKNOWN_KEY });
    await call('admin refresh with secrets in the body', '/admin/clients/redact.client/refresh', {
      method: 'POST',
      key: ADMIN_KEY,
      body: {
        client_secret: BODY_SECRET,
        clientSecret: BODY_SECRET,
        secret: BODY_SECRET,
        password: BODY_PASSWORD,
        nested: { client_secret: BODY_SECRET, token: BODY_TOKEN },
      },
    });
    await call('admin body access_token', '/admin/reload', {
      method: 'POST',
      key: ADMIN_KEY,
      body: { access_token: BODY_TOKEN, client_secret: BODY_SECRET },
    });
    await call('admin reload with a secret in the body', '/admin/reload', {
      method: 'POST',
      key: ADMIN_KEY,
      body: { client_secret: BODY_SECRET },
    });
    await call('admin view', '/admin/clients', { key: ADMIN_KEY });
    // The token the admin refresh fetched, as a caller gets it.
    await call('served after refresh', '/tokens/redact.client');
    // pino writes synchronously to the captured stream; give any deferred line a moment.
    await new Promise((r) => setTimeout(r, 100));
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  it('answered each scripted request as the README says', () => {
    expect(statuses).toEqual({
      'query access_token': 400,
      'served post': 200,
      'served basic': 200,
      'upstream rejected': 502,
      'unknown key': 401,
      'admin refresh with secrets in the body': 200,
      'admin body access_token': 400,
      'admin reload with a secret in the body': 200,
      'admin view': 200,
      'served after refresh': 200,
    });
    // Three distinct IdP tokens went through the service: two clients, and the admin refresh.
    expect(accessTokens.size).toBe(3);
    expect(idp.stats()).toMatchObject({ issued: 3, rejected: 1 });
  });

  it('ran at LOG_LEVEL=debug (the scan below covers the most verbose output)', () => {
    // What loggerOptions() is given as the pino level.
    expect(svc.app.get(ConfigService).runtime.logLevel).toBe('debug');
    expect(svc.logs.lines.length).toBeGreaterThan(15);
  });

  it('wrote no secret, caller key, cookie, API key or access token in any log line', () => {
    const forbidden: Record<string, string> = {
      'client secret (post)': SECRET_POST,
      'client secret (basic)': SECRET_BASIC,
      'client secret (basic, as the Authorization header sent upstream)': basicAuthorization(
        'basic.client',
        SECRET_BASIC,
      ).replace(/^Basic /, ''),
      'client secret the IdP refused': WRONG_SECRET,
      'secret known to the IdP': IDP_SIDE_SECRET,
      'caller key': CALLER_KEY,
      'admin key': ADMIN_KEY,
      'unknown caller key': UNKNOWN_KEY,
      cookie: COOKIE_VALUE,
      'X-Api-Key': API_KEY,
      'Proxy-Authorization': PROXY_AUTH,
      'access_token in the query': QUERY_TOKEN,
      'client_secret in a body': BODY_SECRET,
      'password in a body': BODY_PASSWORD,
      'access_token in a body': BODY_TOKEN,
    };
    [...accessTokens].forEach((token, i) => {
      forbidden[`IdP access token #${i}`] = token;
      // The signature alone is unique to the token (the JWT header is shared by all of them).
      forbidden[`IdP access token #${i} signature`] = token.split('.')[2];
      forbidden[`IdP access token #${i} payload`] = token.split('.')[1];
    });
    const leaks: string[] = [];
    for (const line of svc.logs.lines) {
      for (const [what, value] of Object.entries(forbidden)) {
        if (line.includes(value)) leaks.push(`${what}: ${line}`);
      }
    }
    expect(leaks).toEqual([]);
    // Nor the parameter name with a value after it, nor any query string at all.
    expect(svc.logs.lines.filter((l) => /access_token=|\?/.test(l))).toEqual([]);
  });

  it('records token requests by their audit line (no access line: it would only repeat it), admin calls by an access line without query string', () => {
    const tokenAudit = svc.logs
      .audit()
      .filter((e) => e.clientId === 'redact.client' || e.path === '/tokens/redact.client')
      .map((e) => e.outcome);
    expect(tokenAudit).toEqual(expect.arrayContaining(['invalid_request', 'served']));
    const access = svc.logs
      .entries()
      .filter((e) => e.msg === 'request completed')
      .map((e) => ({
        url: (e.req as { url: string }).url,
        method: (e.req as { method: string }).method,
        status: (e.res as { statusCode: number }).statusCode,
      }));
    expect(access.filter((a) => a.url.startsWith('/tokens/'))).toEqual([]);
    expect(access).toContainEqual({
      url: '/admin/clients/redact.client/refresh',
      method: 'POST',
      status: 200,
    });
    for (const line of access) expect(line.url).not.toContain('?');
  });

  it('names served tokens in the audit log by fingerprint only', () => {
    const served = svc.logs.audit().filter((e) => e.outcome === 'served');
    expect(served.length).toBeGreaterThanOrEqual(3);
    const fingerprints = new Set([...accessTokens].map(tokenFingerprint));
    for (const line of served) {
      expect(line.tokenFingerprint).toMatch(/^[0-9a-f]{8}$/);
      expect(fingerprints).toContain(line.tokenFingerprint);
    }
  });

  it('caps and strips caller text in audit lines (environment, client id)', async () => {
    const environment = `uat\u001b[2J\u202e${'e'.repeat(5000)}`;
    const res = await httpRequest(
      `${svc.url}/tokens/redact.client?environment=${encodeURIComponent(environment)}`,
      { headers: { Authorization: `Bearer ${CALLER_KEY}`, 'X-Request-Id': 'audit-text-1' } },
    );
    expect(res.status).toBe(400);
    const [line] = svc.logs.audit().filter((e) => e.requestId === 'audit-text-1');
    expect(line.outcome).toBe('invalid_request');
    expect(line.environment).toBe(`uat[2J${'e'.repeat(AUDIT_TEXT_MAX_LENGTH - 7)}…`);
    expect(String(line.environment)).toHaveLength(AUDIT_TEXT_MAX_LENGTH);
  });
});
