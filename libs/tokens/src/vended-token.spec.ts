import type { ClientConfig } from '@app/config';
import type { StoredToken } from '@app/token-store';
import { toVendedToken } from './vended-token';
import { TestClock } from '../../../test/support/clock';

/** README "Which clock decides what": the answer's times come from the remaining life. */
describe('toVendedToken', () => {
  const client = { clientId: 'api.client', environment: 'uat' } as ClientConfig;

  it('takes expires_in from the remaining life on the monotonic clock and shows expires_at as wall time plus it', () => {
    const clock = new TestClock({ start: Date.UTC(2026, 10, 27, 10, 0, 0) });
    const token: StoredToken = {
      accessToken: 'a',
      tokenType: 'Bearer',
      requestedAt: clock.monotonic(),
      expiresAt: clock.monotonic() + 60_500,
    };
    expect(toVendedToken(client, token, clock)).toMatchObject({
      expires_in: 60,
      expires_at: '2026-11-27T10:01:00.500Z',
    });

    // The wall clock is set 5 minutes ahead: the shown date moves with it, the life does not.
    clock.skewWall(300_000);
    expect(toVendedToken(client, token, clock)).toMatchObject({
      expires_in: 60,
      expires_at: '2026-11-27T10:06:00.500Z',
    });
  });
});
