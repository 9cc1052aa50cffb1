import { Logger } from '@nestjs/common';
import { PeriodicTask } from './periodic-task';

describe('PeriodicTask', () => {
  let logged: unknown[];

  beforeEach(() => {
    jest.useFakeTimers();
    logged = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((line: unknown) => {
      logged.push(line);
    });
  });

  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('ticks every interval once started, and not after stop', () => {
    let ticks = 0;
    const task = new PeriodicTask('count', 1_000, () => ticks++);

    jest.advanceTimersByTime(5_000);
    expect(ticks).toBe(0);
    task.start();
    jest.advanceTimersByTime(999);
    expect(ticks).toBe(0);
    jest.advanceTimersByTime(1);
    expect(ticks).toBe(1);
    jest.advanceTimersByTime(3_000);
    expect(ticks).toBe(4);
    expect(task.running).toBe(true);

    task.stop();
    jest.advanceTimersByTime(10_000);
    expect(ticks).toBe(4);
    expect(task.running).toBe(false);
    task.stop();
  });

  it('is one timer when started twice', () => {
    let ticks = 0;
    const task = new PeriodicTask('count', 1_000, () => ticks++).start().start();

    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(1);
    task.stop();
  });

  it('keeps no process alive: its timer is unref-d', () => {
    const unref = jest.fn();
    const timer = { unref } as unknown as NodeJS.Timeout;
    jest.spyOn(global, 'setInterval').mockReturnValue(timer);
    const task = new PeriodicTask('idle', 1_000, () => undefined).start();

    expect(unref).toHaveBeenCalledTimes(1);
    jest.spyOn(global, 'clearInterval').mockImplementation(() => undefined);
    task.stop();
  });

  it('logs a tick that throws or rejects and keeps ticking', async () => {
    let ticks = 0;
    const task = new PeriodicTask('flaky', 1_000, () => {
      ticks++;
      if (ticks === 1) throw new Error('thrown');
      return Promise.reject(new Error('rejected'));
    }).start();

    jest.advanceTimersByTime(2_000);
    await Promise.resolve();
    await Promise.resolve();

    expect(ticks).toBe(2);
    expect(logged).toEqual([
      { msg: 'periodic task failed', task: 'flaky', err: { message: 'thrown' } },
      { msg: 'periodic task failed', task: 'flaky', err: { message: 'rejected' } },
    ]);
    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(3);
    task.stop();
  });
});
