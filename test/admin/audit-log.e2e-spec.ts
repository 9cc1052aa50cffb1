import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { DisclosureLog } from '@app/audit';
import {
  httpRequest,
  type InProcessService,
  sha256Hex,
  type SimpleResponse,
  sleep,
  startService,
  writeServiceConfig,
} from '../support';

/**
 * The audit log (README "Logs and metrics"): one `audit: true` line per refused or failed token
 * request and per first disclosure of a token to a caller (repeats summed into summary lines),
 * naming caller, client, environment and outcome, with a short fingerprint of the token served
 * and never the token itself.
 */
const SECRETS: Record<string, string> = {
  'deals.client': 'audit-deals-secret-0001',
  'flaky.client': 'audit-flaky-secret-0002',
  'other.client': 'audit-other-secret-0003',
  'wrong.client': 'audit-wrong-configured-0004',
};
const KEY_CALLER = 'audit-caller-key-0001-aaaaaaaaaaaaaaaaaaaa';
/** The audit field carrying the token fingerprint (README "Logs and metrics"). */
const TOKEN_FIELD = 'tokenFingerprint';

type AuditLine = Record<string, unknown>;

describe('audit log (e2e)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  let dir: string;
  /** Every token this suite was handed, and how many 200 answers it got. */
  const tokensServed = new Set<string>();
  let servedAnswers = 0;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'deals.client', secret: SECRETS['deals.client'] },
        { clientId: 'flaky.client', secret: SECRETS['flaky.client'] },
        { clientId: 'wrong.client', secret: 'audit-the-idp-knows-another-0005' },
      ],
      expiresIn: 1200,
    });
    dir = mkdtempSync(join(tmpdir(), 'token-vendor-audit-'));
    for (const [clientId, secret] of Object.entries(SECRETS)) {
      writeFileSync(join(dir, clientId), `${secret}\n`);
    }
    const configPath = join(dir, 'config.yaml');
    writeServiceConfig(configPath, {
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 } },
      clients: Object.keys(SECRETS).map((clientId) => ({
        clientId,
        environment: 'uat',
        secretFile: join(dir, clientId),
      })),
      callers: [
        {
          name: 'deals-service',
          keys: [KEY_CALLER],
          clients: ['deals.client', 'flaky.client', 'wrong.client'],
        },
      ],
    });
    svc = await startService({ configPath, scheduler: false });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => idp.clearFault());

  const auditLines = (): string[] =>
    svc.logs.lines.filter((l) => (JSON.parse(l) as AuditLine).audit === true);

  /** Runs one request; returns its answer and the audit lines it wrote (raw and parsed). */
  const audited = async (
    path: string,
    options: { key?: string | null; localAddress?: string; post?: object } = {},
  ): Promise<{ res: SimpleResponse; lines: string[]; audit: AuditLine[] }> => {
    const before = auditLines().length;
    const key = options.key === undefined ? KEY_CALLER : options.key;
    const res = await httpRequest(`${svc.url}${path}`, {
      headers: {
        ...(key === null ? {} : { authorization: `Bearer ${key}` }),
        ...(options.post ? { 'content-type': 'application/json' } : {}),
      },
      localAddress: options.localAddress,
      ...(options.post ? { method: 'POST', body: JSON.stringify(options.post) } : {}),
    });
    if (res.status === 200) {
      servedAnswers++;
      tokensServed.add(res.json().access_token as string);
    }
    await sleep(30); // let any late line arrive, so "exactly one" means one
    const lines = auditLines().slice(before);
    return { res, lines, audit: lines.map((l) => JSON.parse(l) as AuditLine) };
  };

  it('writes one served line with the token fingerprint when a caller first receives a token; repeats go into a summary', async () => {
    // The first is fetched from the IdP and audited at once.
    const { res, lines, audit } = await audited('/tokens/deals.client');
    expect(res.status).toBe(200);
    const accessToken = res.json().access_token as string;
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      msg: 'token request',
      audit: true,
      caller: 'deals-service',
      clientId: 'deals.client',
      environment: 'uat',
      outcome: 'served',
      source: '127.0.0.1',
    });
    expect(audit[0][TOKEN_FIELD]).toMatch(/^[0-9a-f]{8}$/);
    expect(audit[0][TOKEN_FIELD]).toBe(sha256Hex(accessToken).slice(0, 8));
    expect(lines[0]).not.toContain(accessToken);
    expect(audit[0].reason).toBeUndefined();

    // The same token again, from the cache: a repeat, counted, written with the next summary.
    const again = await audited('/tokens/deals.client');
    expect(again.res.json().access_token).toBe(accessToken);
    expect(again.audit).toEqual([]);
    const before = auditLines().length;
    svc.app.get(DisclosureLog).flush();
    const summary = auditLines()
      .slice(before)
      .map((l) => JSON.parse(l) as AuditLine);
    expect(summary).toEqual([
      expect.objectContaining({
        msg: 'token disclosures repeated',
        audit: true,
        caller: 'deals-service',
        clientId: 'deals.client',
        environment: 'uat',
        outcome: 'served',
        [TOKEN_FIELD]: sha256Hex(accessToken).slice(0, 8),
        count: 1,
        sources: ['127.0.0.1'],
      }),
    ]);
  });

  it.each([
    ['a malformed client id', '/tokens/bad%20id', 400],
    ['a bad minTtl', '/tokens/deals.client?minTtl=abc', 400],
    ['an unknown environment', '/tokens/deals.client?environment=staging', 400],
  ])('writes one invalid_request line for %s', async (_case, path, status) => {
    const { res, audit } = await audited(path);
    expect(res.status).toBe(status);
    expect(res.json().error).toBe('invalid_request');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      audit: true,
      caller: 'deals-service',
      outcome: 'invalid_request',
    });
    expect(audit[0][TOKEN_FIELD]).toBeUndefined();
  });

  it('writes one invalid_request line when the caller key is sent in the query', async () => {
    const { res, audit } = await audited('/tokens/deals.client?access_token=some-key-in-the-url', {
      localAddress: '127.0.0.32',
    });
    expect(res.status).toBe(400);
    expect(res.json().error).toBe('invalid_request');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ audit: true, outcome: 'invalid_request' });
    expect(JSON.stringify(audit[0])).not.toContain('some-key-in-the-url');
  });

  it.each([
    ['not_configured', '/tokens/no-such.client'],
    ['not_allowed', '/tokens/other.client'],
  ])('writes one unknown_client line with reason %s', async (reason, path) => {
    const { res, audit } = await audited(path);
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({
      error: 'unknown_client',
      message: 'No such client is available to this caller.',
    });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      audit: true,
      caller: 'deals-service',
      clientId: path.split('/').at(-1),
      outcome: 'unknown_client',
      reason,
    });
    expect(audit[0][TOKEN_FIELD]).toBeUndefined();
  });

  it('writes one upstream_rejected line when the IdP refuses the secret', async () => {
    const { res, audit } = await audited('/tokens/wrong.client');
    expect(res.status).toBe(502);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      audit: true,
      caller: 'deals-service',
      clientId: 'wrong.client',
      environment: 'uat',
      outcome: 'upstream_rejected',
      reason: 'invalid_client',
    });
    expect(audit[0][TOKEN_FIELD]).toBeUndefined();
  });

  it.each([
    ['answers 500 (retried)', 'status_500', 'bad_status'],
    ['resets the connection (retried)', 'reset', 'network'],
    ['answers truncated JSON', 'truncated_json', 'bad_answer'],
  ] as const)(
    'writes one upstream_unavailable line with why when the IdP %s and no token is held',
    async (_case, mode, reason) => {
      idp.setFault({ mode });
      const { res, lines, audit } = await audited('/tokens/flaky.client');
      expect(res.status).toBe(503);
      expect(res.json().error).toBe('upstream_unavailable');
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({
        msg: 'token request',
        audit: true,
        caller: 'deals-service',
        clientId: 'flaky.client',
        environment: 'uat',
        outcome: 'upstream_unavailable',
        reason,
      });
      expect(audit[0][TOKEN_FIELD]).toBeUndefined();
      // The cause's code only: not the answer's message, nor the IdP's words.
      expect(lines[0]).not.toContain(res.json().message as string);
    },
  );

  it('writes the same reason on a rejection report answered 503', async () => {
    idp.setFault({ mode: 'status_500' });
    const { res, audit } = await audited('/tokens/flaky.client/rejections', {
      post: { token_sha256: 'a'.repeat(64) },
    });
    expect(res.status).toBe(503);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      msg: 'token rejection report',
      audit: true,
      caller: 'deals-service',
      clientId: 'flaky.client',
      environment: 'uat',
      outcome: 'upstream_unavailable',
      reason: 'bad_status',
    });
  });

  it.each([
    ['no key', null],
    ['an unknown key', 'audit-not-a-caller-key-9999'],
  ])(
    'writes one unauthorized line for a refused request with %s, without the key',
    async (_c, key) => {
      const { res, lines, audit } = await audited('/tokens/deals.client?environment=uat', {
        key,
        localAddress: '127.0.0.31',
      });
      expect(res.status).toBe(401);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({
        audit: true,
        caller: null,
        path: '/tokens/deals.client',
        outcome: 'unauthorized',
      });
      if (key) expect(lines[0]).not.toContain(key);
    },
  );

  it('never writes a token, a secret or a caller key into any line', async () => {
    expect((await audited('/tokens/deals.client')).res.status).toBe(200);
    const all = svc.logs.lines.join('\n');
    for (const t of tokensServed) expect(all).not.toContain(t);
    for (const secret of [...Object.values(SECRETS), KEY_CALLER]) expect(all).not.toContain(secret);
    svc.app.get(DisclosureLog).flush();
    const served = svc.logs.audit().filter((e) => e.outcome === 'served');
    // Every answer is one first disclosure or counted in a summary.
    expect(served.reduce((sum, e) => sum + (typeof e.count === 'number' ? e.count : 1), 0)).toBe(
      servedAnswers,
    );
    const fingerprints = [...tokensServed].map((t) => sha256Hex(t).slice(0, 8));
    for (const line of served) expect(fingerprints).toContain(line[TOKEN_FIELD]);
  });
});
