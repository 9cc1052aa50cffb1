import { Agent, request } from 'node:http';
import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import { DisclosureLog } from '@app/audit';
import {
  httpRequest,
  type InProcessService,
  type Replica,
  sha256Hex,
  startService,
} from '../support';

/**
 * Audit of served tokens: disclosures, not repeats (README "Logs and metrics"). The service as
 * main.ts builds it, over HTTP, against the sandbox IdP; the SIGTERM case runs the production
 * entry point as its own process.
 */
const SECRET = 'sandbox-secret-disclosures-0001';
const KEY = 'caller-key-disclosures-0001-aaaaaaaaaaaaa';
const KEY_OTHER = 'caller-key-disclosures-0002-bbbbbbbbbbbbb';
const KEY_ADMIN = 'caller-key-disclosures-0003-ccccccccccccc';

type Line = Record<string, unknown>;

/** GETs over one keep-alive connection pool, `concurrency` at a time; resolves the answers. */
async function getMany(
  url: string,
  key: string,
  total: number,
  concurrency = 8,
): Promise<{ status: number; body: string }[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const answers: { status: number; body: string }[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      answers.push(
        await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(
            url,
            { agent, headers: { authorization: `Bearer ${key}` } },
            (res) => {
              let body = '';
              res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          req.end();
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  return answers;
}

const sumOfServed = (lines: Line[]): number =>
  lines
    .filter((l) => l.audit === true && l.outcome === 'served')
    .reduce(
      (sum, l) => sum + (l.msg === 'token disclosures repeated' ? (l.count as number) : 1),
      0,
    );

describe('audit: disclosures, not repeats (e2e)', () => {
  let idp: RunningSandbox;

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'deals.client', secret: SECRET },
        { clientId: 'other.client', secret: SECRET },
      ],
    });
  });

  afterAll(async () => {
    await idp?.close();
  });

  describe('in process', () => {
    let svc: InProcessService;
    let closed: boolean;

    beforeEach(async () => {
      closed = false;
      svc = await startService({
        scheduler: false,
        redis: true,
        environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
        clients: [
          { clientId: 'deals.client', environment: 'uat', secret: SECRET },
          { clientId: 'other.client', environment: 'uat', secret: SECRET },
        ],
        callers: [
          { name: 'deals-service', keys: [KEY], clients: ['*'] },
          { name: 'other-service', keys: [KEY_OTHER], clients: ['*'] },
          { name: 'admin', keys: [KEY_ADMIN], clients: [], admin: true },
        ],
      });
    });

    afterEach(async () => {
      if (!closed) await svc?.close();
    });

    it('the first disclosure line is written before the answer leaves', async () => {
      const cases = [
        [KEY, 'deals.client'],
        [KEY_OTHER, 'deals.client'], // another caller, same token: its own first disclosure
        [KEY, 'other.client'],
      ];
      for (const [key, clientId] of cases) {
        const requestId = `first-${clientId}-${key.slice(-4)}`;
        const res = await httpRequest(`${svc.url}/tokens/${clientId}`, {
          headers: { authorization: `Bearer ${key}`, 'x-request-id': requestId },
        });
        expect(res.status).toBe(200);
        // No wait: the line had to be out before the answer was.
        const line = svc.logs.audit().find((l) => l.requestId === requestId);
        expect(line).toMatchObject({
          msg: 'token request',
          outcome: 'served',
          clientId,
          tokenFingerprint: sha256Hex(res.json().access_token).slice(0, 8),
          source: '127.0.0.1',
        });
      }
    });

    it('1,000 repeats: summary lines whose counts add up to 1,000, one first line', async () => {
      // The disclosure, then 1,000 repeats 8 at a time.
      const first = await getMany(`${svc.url}/tokens/deals.client`, KEY, 1, 1);
      const answers = await getMany(`${svc.url}/tokens/deals.client`, KEY, 1000);
      expect(answers).toHaveLength(1000);
      expect([...first, ...answers].filter((a) => a.status !== 200)).toEqual([]);
      svc.app.get(DisclosureLog).flush(); // the 10 s timer's work, now
      const audit = svc.logs.audit();
      expect(audit.filter((l) => l.msg === 'token request')).toHaveLength(1);
      const summaries = audit.filter((l) => l.msg === 'token disclosures repeated');
      expect(summaries.length).toBeGreaterThanOrEqual(1);
      expect(summaries.reduce((sum, l) => sum + (l.count as number), 0)).toBe(1000);
      for (const s of summaries) {
        expect(s).toMatchObject({
          caller: 'deals-service',
          clientId: 'deals.client',
          sources: ['127.0.0.1'],
        });
        expect(Date.parse(s.firstAt as string)).toBeLessThanOrEqual(Date.parse(s.lastAt as string));
      }
    }, 30_000);

    it('closing the application writes the pending counts', async () => {
      const first = await getMany(`${svc.url}/tokens/deals.client`, KEY, 1, 1);
      const answers = await getMany(`${svc.url}/tokens/deals.client`, KEY, 20);
      expect([...first, ...answers].filter((a) => a.status !== 200)).toEqual([]);
      expect(svc.logs.audit().filter((l) => l.msg === 'token disclosures repeated')).toEqual([]);
      await svc.close();
      closed = true;
      expect(sumOfServed(svc.logs.audit())).toBe(21);
    });

    it('a new token after a refresh is a new disclosure', async () => {
      const first = await httpRequest(`${svc.url}/tokens/deals.client`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      await new Promise((r) => setTimeout(r, 20));
      const refresh = await httpRequest(`${svc.url}/admin/clients/deals.client/refresh`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_ADMIN}` },
      });
      expect(refresh.status).toBe(200);
      const second = await httpRequest(`${svc.url}/tokens/deals.client`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const tokens = [first.json().access_token, second.json().access_token];
      expect(tokens[0]).not.toBe(tokens[1]);
      expect(
        svc.logs
          .audit()
          .filter((l) => l.msg === 'token request' && l.outcome === 'served')
          .map((l) => l.tokenFingerprint),
      ).toEqual(tokens.map((t) => sha256Hex(t).slice(0, 8)));
    });
  });

  /** The production entry point as a process, for what only a real process shows (a crash, SIGTERM). */
  const startProcess = (): Promise<Replica> =>
    startService({
      run: 'process',
      logLevel: 'info',
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: [{ clientId: 'deals.client', environment: 'uat', secret: SECRET }],
      callers: [{ name: 'deals-service', keys: [KEY], clients: ['*'] }],
    });

  it('a crash loses no disclosure: the first line is out before the answer (SIGKILL, a real process)', async () => {
    const replica = await startProcess();
    const res = await httpRequest(`${replica.url}/tokens/deals.client`, {
      headers: { authorization: `Bearer ${KEY}`, 'x-request-id': 'before-the-crash' },
    });
    expect(res.status).toBe(200);
    replica.kill('SIGKILL');
    await replica.exited;
    expect(
      replica.entries().filter((l) => l.audit === true && l.requestId === 'before-the-crash'),
    ).toEqual([
      expect.objectContaining({
        msg: 'token request',
        outcome: 'served',
        tokenFingerprint: sha256Hex(res.json().access_token).slice(0, 8),
      }),
    ]);
  }, 60_000);

  it('SIGTERM writes the pending counts before the process exits (a real process)', async () => {
    const replica = await startProcess();
    const first = await getMany(`${replica.url}/tokens/deals.client`, KEY, 1, 1);
    const answers = await getMany(`${replica.url}/tokens/deals.client`, KEY, 49);
    expect([...first, ...answers].filter((a) => a.status !== 200)).toEqual([]);
    const audit = () => replica.entries().filter((l) => l.audit === true);
    expect(audit().filter((l) => l.msg === 'token disclosures repeated')).toEqual([]);

    expect(await replica.stop()).toBe(0);

    expect(audit().filter((l) => l.msg === 'token request')).toHaveLength(1);
    expect(audit().filter((l) => l.msg === 'token disclosures repeated')).toEqual([
      expect.objectContaining({ caller: 'deals-service', clientId: 'deals.client', count: 49 }),
    ]);
    expect(sumOfServed(audit())).toBe(50);
  }, 60_000);
});
