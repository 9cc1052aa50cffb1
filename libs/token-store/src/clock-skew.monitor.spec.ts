import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTasks } from '@app/periodic';
import { ClockSkew } from '@app/clock';
import { ClockSkewMonitor } from './clock-skew.monitor';
import { MemoryTokenStore } from './memory-token.store';
import type { TokenStore } from './token-store';
import { TestClock } from '../../../test/support/clock';

/** A store whose reference time is the manual clock's monotonic time plus what the test says. */
function redisLike(clock: TestClock): TokenStore & { referenceOffsetMs: number } {
  const store = new MemoryTokenStore(clock) as unknown as TokenStore & {
    referenceOffsetMs: number;
  };
  Object.assign(store, {
    kind: 'redis',
    referenceOffsetMs: 0,
    referenceTime: () => Promise.resolve(clock.monotonic() + store.referenceOffsetMs),
  });
  return store;
}

describe('ClockSkewMonitor', () => {
  let warn: jest.SpyInstance;
  let log: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it('reports in sync, then a wall clock 5 minutes ahead (logged once however often measured), then in sync again (logged once)', async () => {
    const clock = new TestClock();
    const skew = new ClockSkew();
    const monitor = new ClockSkewMonitor(
      redisLike(clock),
      clock,
      skew,
      new PeriodicTasks(new SchedulerRegistry()),
    );
    expect(monitor.report()).toEqual({
      reference: 'redis',
      state: 'unmeasured',
      toleranceSeconds: 2,
    });
    await expect(monitor.measure()).resolves.toEqual({
      reference: 'redis',
      state: 'in-sync',
      skewSeconds: 0,
      toleranceSeconds: 2,
    });

    clock.skewWall(300_000);
    for (let i = 0; i < 3; i++) {
      await expect(monitor.measure()).resolves.toMatchObject({ state: 'skewed', skewSeconds: 300 });
    }
    expect(skew.referenceNow(clock)).toBe(clock.monotonic());
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0][0]).toMatchObject({ skewSeconds: 300, toleranceSeconds: 2 });

    clock.skewWall(-300_000);
    await expect(monitor.measure()).resolves.toMatchObject({ state: 'in-sync', skewSeconds: 0 });
    await monitor.measure();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(log).toHaveBeenCalledTimes(1);
  });

  it('keeps the last measurement when the store does not answer', async () => {
    const clock = new TestClock();
    const store = redisLike(clock);
    const monitor = new ClockSkewMonitor(
      store,
      clock,
      new ClockSkew(),
      new PeriodicTasks(new SchedulerRegistry()),
    );
    clock.skewWall(-5_000);
    await monitor.measure();
    store.referenceTime = () => Promise.reject(new Error('down'));
    await expect(monitor.measure()).resolves.toMatchObject({ state: 'skewed', skewSeconds: -5 });
  });

  it('has no reference with the memory store', async () => {
    const clock = new TestClock();
    const monitor = new ClockSkewMonitor(
      new MemoryTokenStore(clock),
      clock,
      new ClockSkew(),
      new PeriodicTasks(new SchedulerRegistry()),
    );
    await expect(monitor.measure()).resolves.toEqual({ reference: 'none' });
  });
});
