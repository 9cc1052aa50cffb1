import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  httpRequest,
  type InProcessService,
  type SimpleResponse,
  startService,
  testEncryptionKeys,
} from '../support';

/**
 * Concurrent first requests for a client nobody holds a token for yet, on a real Redis and the
 * sandbox IdP: every caller gets the one token the IdP issued, none a 503 `too_short`. Each
 * round uses a client this app has never served, so every round is a cold start of that client.
 *
 * The race these guard: a request that looked for this replica's copy and in the store just
 * before the fetched token landed (its store read was answered before the write) must still
 * serve that token, not take it for "too young to replace" and answer 503.
 */
const SECRET = 'sandbox-secret-cold-0001';
const CALLER_KEY = 'caller-key-cold-0001-aaaaaaaaaaaaaaaaaaaa';
const ROUNDS = 12;
/** The IdP answers this late, so the staggered requests straddle the token's arrival. */
const IDP_DELAY_MS = 60;
const clientIds = Array.from({ length: ROUNDS * 3 }, (_, i) => `cold-${i}.client`);

describe('GET /tokens/:clientId: a cold burst (e2e, real Redis)', () => {
  let idp: RunningSandbox;
  let svc: InProcessService;
  const unused = [...clientIds];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: clientIds.map((clientId) => ({ clientId, secret: SECRET })),
      expiresIn: 1200,
    });
    // No proactive refresh or warm-up: every client stays cold until a round asks for it.
    svc = await startService({
      scheduler: false,
      redis: true,
      logLevel: 'warn',
      environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
      clients: clientIds.map((clientId) => ({ clientId, environment: 'uat', secret: SECRET })),
      callers: [{ name: 'cold-caller', keys: [CALLER_KEY], clients: ['*'] }],
    });
  });

  afterAll(async () => {
    await svc?.close();
    await idp?.close();
  });

  afterEach(() => idp.clearFault());

  const get = (clientId: string): Promise<SimpleResponse> =>
    httpRequest(`${svc.url}/tokens/${clientId}`, {
      headers: { authorization: `Bearer ${CALLER_KEY}` },
    });

  /** A round's faults, described for the failure message (empty when the round was right). */
  function faultsOf(clientId: string, answers: SimpleResponse[]): string[] {
    const bad = answers.filter((a) => a.status !== 200);
    const tokens = new Set(
      answers.filter((a) => a.status === 200).map((a) => a.json().access_token),
    );
    const idpRequests = idp.stats().tokenRequests;
    if (bad.length === 0 && tokens.size === 1 && idpRequests === 1) return [];
    return [
      `${clientId}: ${answers.length - bad.length}/${answers.length} × 200, ${tokens.size} tokens, ` +
        `${idpRequests} IdP requests; first other answer: ${bad[0] ? `${bad[0].status} ${bad[0].text}` : 'none'}`,
    ];
  }

  it.each([8, 32])(
    '%i simultaneous first requests: all 200 with the one token, one IdP request (12 cold clients)',
    async (concurrency) => {
      const faults: string[] = [];
      for (const clientId of unused.splice(0, ROUNDS)) {
        idp.resetStats();
        const answers = await Promise.all(Array.from({ length: concurrency }, () => get(clientId)));
        faults.push(...faultsOf(clientId, answers));
      }
      expect(faults).toEqual([]);
    },
    60_000,
  );

  it('first requests arriving while the token comes in: all 200 with the one token, one IdP request (12 cold clients)', async () => {
    idp.setFault({ mode: 'slow', delayMs: IDP_DELAY_MS });
    const faults: string[] = [];
    for (const clientId of unused.splice(0, ROUNDS)) {
      idp.resetStats();
      // A request every ~2 ms from before the fetch starts until well after its answer: some
      // read the store while the fetched token is being written.
      const answers: Promise<SimpleResponse>[] = [];
      for (let i = 0; i < 48; i++) {
        answers.push(get(clientId));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      faults.push(...faultsOf(clientId, await Promise.all(answers)));
    }
    expect(faults).toEqual([]);
  }, 60_000);
});

/**
 * The same race on the replicas that did not fetch: their copy arrives from the store (the
 * lock holder's write, found by the fetcher's poll) while their own requests' store reads are
 * still out. Three app instances on one Redis, one fleet (same key prefix and keys).
 */
describe('GET /tokens/:clientId: a cold burst over 3 replicas (e2e, real Redis)', () => {
  const REPLICAS = 3;
  const fleetClientIds = Array.from({ length: ROUNDS }, (_, i) => `fleet-cold-${i}.client`);
  let idp: RunningSandbox;
  const replicas: InProcessService[] = [];

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: fleetClientIds.map((clientId) => ({ clientId, secret: SECRET })),
      expiresIn: 1200,
    });
    const keyPrefix = `tv-test-cold-fleet-${Date.now()}-${process.pid}:`;
    const encryptionKeys = testEncryptionKeys();
    for (let i = 0; i < REPLICAS; i++) {
      replicas.push(
        await startService({
          scheduler: false,
          redis: true,
          keyPrefix,
          encryptionKeys,
          logLevel: 'warn',
          environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 2000 } },
          clients: fleetClientIds.map((clientId) => ({
            clientId,
            environment: 'uat',
            secret: SECRET,
          })),
          callers: [{ name: 'cold-caller', keys: [CALLER_KEY], clients: ['*'] }],
        }),
      );
    }
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.close();
    await idp?.close();
  });

  it('first requests spread over the replicas while the token comes in: all 200 with the one token, one IdP request (12 cold clients)', async () => {
    idp.setFault({ mode: 'slow', delayMs: IDP_DELAY_MS });
    const faults: string[] = [];
    for (const clientId of fleetClientIds) {
      idp.resetStats();
      const answers: Promise<SimpleResponse>[] = [];
      for (let i = 0; i < 96; i++) {
        answers.push(
          httpRequest(`${replicas[i % REPLICAS].url}/tokens/${clientId}`, {
            headers: { authorization: `Bearer ${CALLER_KEY}` },
          }),
        );
        if (i % REPLICAS === REPLICAS - 1) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const settled = await Promise.all(answers);
      const bad = settled.filter((a) => a.status !== 200);
      const tokens = new Set(
        settled.filter((a) => a.status === 200).map((a) => a.json().access_token),
      );
      const idpRequests = idp.stats().tokenRequests;
      if (bad.length > 0 || tokens.size !== 1 || idpRequests !== 1) {
        faults.push(
          `${clientId}: ${settled.length - bad.length}/${settled.length} × 200, ${tokens.size} tokens, ` +
            `${idpRequests} IdP requests; first other answer: ${bad[0] ? `${bad[0].status} ${bad[0].text}` : 'none'}`,
        );
      }
    }
    idp.clearFault();
    expect(faults).toEqual([]);
  }, 60_000);
});
