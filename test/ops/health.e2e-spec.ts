import { startIdentitySandbox, type RunningSandbox } from '@app/identity-sandbox';
import {
  httpRequest,
  type InProcessService,
  startRedisServer,
  startService,
  type ThrowawayRedis,
} from '../support';

/**
 * /health/live and /health/ready (README "Health"): no caller key
 * needed; readiness names every dependency and its state, and a Redis outage is reported
 * (`tokenStore.state: 'down'`) without failing readiness — Redis is shared by every replica,
 * so failing on it would take the whole fleet out of the Service at once.
 */
const SECRET = 'health-secret-0001-not-a-real-one';
const CALLER_KEY = 'health-caller-key-0001-aaaaaaaaaaaaaaaa';

const LIVE_BODY = { status: 'ok', info: {}, error: {}, details: {} };

/**
 * The clock component (README "Which clock decides what"): against Redis's TIME, this process's
 * correct clock is in sync (the measured skew is a few ms of noise); the memory store has no
 * reference. It never fails readiness.
 */
function clockOf(kind: 'redis' | 'memory'): Record<string, unknown> {
  if (kind === 'memory') return { status: 'up', reference: 'none' };
  return {
    status: 'up',
    reference: 'redis',
    state: 'in-sync',
    skewSeconds: expect.any(Number) as unknown,
    toleranceSeconds: 2,
  };
}

/**
 * The IdP component: the uat environment as the token requests last found it (`unknown` before
 * any); always `status: up`, whatever its state.
 */
function idpsOf(state: 'unknown' | 'up' | 'down', lastOutcome?: string): Record<string, unknown> {
  const at = expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown;
  const uat =
    state === 'unknown'
      ? { state }
      : state === 'up'
        ? { state, lastOutcome: 'ok', lastAttemptAt: at, lastUpAt: at }
        : { state, lastOutcome, lastAttemptAt: at, lastUpAt: at };
  return { status: 'up', environments: { uat } };
}

function readyBody(
  kind: 'redis' | 'memory',
  state: 'up' | 'down',
  idps = idpsOf('unknown'),
): Record<string, unknown> {
  const components = {
    configuration: { status: 'up', environments: 1, clients: 2, callers: 1 },
    tokenStore: { status: 'up', kind, state },
    clock: clockOf(kind),
    identityProviders: idps,
  };
  return { status: 'ok', info: components, error: {}, details: components };
}

describe('health endpoints (e2e)', () => {
  let idp: RunningSandbox;

  const options = () => ({
    scheduler: false,
    environments: { uat: { tokenUrl: idp.tokenUrl, timeoutMs: 1000 } },
    clients: [
      { clientId: 'health.client', environment: 'uat', secret: SECRET },
      { clientId: 'other.client', environment: 'uat', secret: SECRET },
    ],
    callers: [{ name: 'health-caller', keys: [CALLER_KEY], clients: ['*'] }],
  });

  beforeAll(async () => {
    idp = await startIdentitySandbox({
      clients: [
        { clientId: 'health.client', secret: SECRET },
        { clientId: 'other.client', secret: SECRET },
      ],
    });
  });

  afterAll(async () => {
    await idp?.close();
  });

  describe('with Redis (a throwaway redis-server this suite kills)', () => {
    let redis: ThrowawayRedis;
    let svc: InProcessService;

    beforeAll(async () => {
      redis = await startRedisServer();
      svc = await startService({ ...options(), redis: redis.url });
    });

    afterAll(async () => {
      await svc?.close();
      await redis?.stop();
    });

    it('answers live and ready 200 without a caller key, naming configuration and the redis store up', async () => {
      const live = await httpRequest(`${svc.url}/health/live`);
      expect(live.status).toBe(200);
      expect(live.headers['content-type']).toMatch(/^application\/json/);
      expect(live.json()).toEqual(LIVE_BODY);

      const ready = await httpRequest(`${svc.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.headers['content-type']).toMatch(/^application\/json/);
      expect(ready.json()).toEqual(readyBody('redis', 'up'));
    });

    it('ignores a caller key on health (public) — a wrong one neither fails nor counts as a failed authentication', async () => {
      for (let i = 0; i < 12; i++) {
        const res = await httpRequest(`${svc.url}/health/ready`, {
          headers: { Authorization: 'Bearer not-a-known-key' },
        });
        expect(res.status).toBe(200);
      }
      // Twelve wrong keys on a public route did not put this source over the failed-auth limit.
      const token = await httpRequest(`${svc.url}/tokens/health.client`, {
        headers: { Authorization: `Bearer ${CALLER_KEY}` },
      });
      expect(token.status).toBe(200);
    });

    it('stays live and ready while Redis is down, reporting tokenStore down; back up when Redis returns', async () => {
      await redis.kill();

      const live = await httpRequest(`${svc.url}/health/live`);
      expect(live.status).toBe(200);
      expect(live.json()).toEqual(LIVE_BODY);

      const started = Date.now();
      const ready = await httpRequest(`${svc.url}/health/ready`);
      // Every Redis command is bounded (1 s): a dead Redis never hangs the probe.
      expect(Date.now() - started).toBeLessThan(1500);
      expect(ready.status).toBe(200);
      expect(ready.json()).toEqual(readyBody('redis', 'down', idpsOf('up')));

      await redis.restart();
      // ioredis reconnects by itself (backoff capped at 2 s).
      const deadline = Date.now() + 8000;
      let body: unknown;
      do {
        await new Promise((r) => setTimeout(r, 100));
        const res = await httpRequest(`${svc.url}/health/ready`);
        expect(res.status).toBe(200);
        body = res.json();
      } while (JSON.stringify(body).includes('"down"') && Date.now() < deadline);
      expect(body).toEqual(readyBody('redis', 'up', idpsOf('up')));
    });
  });

  describe('an IdP that stops answering', () => {
    let svc: InProcessService;

    beforeAll(async () => {
      svc = await startService(options());
    });

    afterAll(async () => {
      idp.clearFault();
      await svc?.close();
    });

    it('is named down in the readiness body, readiness staying 200; up again once it answers', async () => {
      const token = (clientId: string) =>
        httpRequest(`${svc.url}/tokens/${clientId}`, {
          headers: { Authorization: `Bearer ${CALLER_KEY}` },
        });
      expect((await token('health.client')).status).toBe(200);
      expect((await httpRequest(`${svc.url}/health/ready`)).json()).toEqual(
        readyBody('memory', 'up', idpsOf('up')),
      );

      idp.setFault({ mode: 'status_503' });
      expect((await token('other.client')).status).toBe(503);
      const down = await httpRequest(`${svc.url}/health/ready`);
      expect(down.status).toBe(200);
      expect(down.json()).toEqual(readyBody('memory', 'up', idpsOf('down', 'bad_status')));
      // The token it holds is still served.
      expect((await token('health.client')).status).toBe(200);

      idp.clearFault();
      expect((await token('other.client')).status).toBe(200);
      expect((await httpRequest(`${svc.url}/health/ready`)).json()).toEqual(
        readyBody('memory', 'up', idpsOf('up')),
      );
    });
  });

  describe('in memory mode (no REDIS_URL)', () => {
    let svc: InProcessService;

    beforeAll(async () => {
      svc = await startService(options());
    });

    afterAll(async () => {
      await svc?.close();
    });

    it('answers live and ready 200 with tokenStore kind memory, state up', async () => {
      const live = await httpRequest(`${svc.url}/health/live`);
      expect(live.status).toBe(200);
      expect(live.json()).toEqual(LIVE_BODY);

      const ready = await httpRequest(`${svc.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.json()).toEqual(readyBody('memory', 'up'));
    });

    it('writes no access log line for health probes', async () => {
      await httpRequest(`${svc.url}/health/live`);
      await httpRequest(`${svc.url}/health/ready`);
      const probeLines = svc.logs
        .entries()
        .filter((e) => /^\/health\//.test((e.req as { url?: string } | undefined)?.url ?? ''));
      expect(probeLines).toEqual([]);
    });
  });
});
