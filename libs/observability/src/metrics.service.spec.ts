import { MetricsService } from './metrics.service';

describe('MetricsService served-token counting', () => {
  const clock = { now: () => 0, monotonic: () => 0, sleep: () => Promise.resolve() };
  const served = async (metrics: MetricsService) =>
    (await metrics.tokenRequests.get()).values
      .map((v) => ({ ...v.labels, value: v.value }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

  it('adds what was counted on the hot path to the same series, once, when read', async () => {
    const metrics = new MetricsService(clock);
    for (let i = 0; i < 3; i++) metrics.countServed('a.client', 'uat');
    metrics.countServed('a.client', 'production');
    metrics.tokenRequests.inc({ client_id: 'a.client', environment: 'uat', outcome: 'served' });
    metrics.tokenRequests.inc({
      client_id: 'a.client',
      environment: 'uat',
      outcome: 'upstream_rejected',
    });
    const expected = [
      { client_id: 'a.client', environment: 'production', outcome: 'served', value: 1 },
      { client_id: 'a.client', environment: 'uat', outcome: 'served', value: 4 },
      { client_id: 'a.client', environment: 'uat', outcome: 'upstream_rejected', value: 1 },
    ];
    expect(await served(metrics)).toEqual(expected);
    // A second read adds nothing new.
    expect(await served(metrics)).toEqual(expected);
    metrics.countServed('a.client', 'uat');
    const text = await metrics.registry.metrics();
    expect(text).toContain(
      'token_vendor_token_requests_total{client_id="a.client",environment="uat",outcome="served"} 5',
    );
  });
});
