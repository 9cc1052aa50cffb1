import { Logger } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { PeriodicModule } from './periodic.module';
import { PeriodicTasks } from './periodic-tasks';

describe('PeriodicTasks', () => {
  let logged: unknown[];
  let registry: SchedulerRegistry;
  let tasks: PeriodicTasks;

  beforeEach(() => {
    jest.useFakeTimers();
    logged = [];
    jest.spyOn(Logger.prototype, 'error').mockImplementation((line: unknown) => {
      logged.push(line);
    });
    registry = new SchedulerRegistry();
    tasks = new PeriodicTasks(registry);
  });

  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  it('ticks every interval once started, and not after stop', () => {
    let ticks = 0;
    const task = tasks.create('count', 1_000, () => ticks++);

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

  it('is registered in the SchedulerRegistry under its name while it runs', () => {
    const task = tasks.create('count', 1_000, () => undefined);
    expect(registry.getIntervals()).toEqual([]);

    task.start();
    expect(registry.getIntervals()).toEqual(['count']);

    task.stop();
    expect(registry.getIntervals()).toEqual([]);
    // Started again after a stop: registered again.
    task.start();
    expect(registry.getIntervals()).toEqual(['count']);
    task.stop();
  });

  it('is one timer and one registration when started twice', () => {
    let ticks = 0;
    const task = tasks
      .create('count', 1_000, () => ticks++)
      .start()
      .start();

    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(1);
    expect(registry.getIntervals()).toEqual(['count']);
    expect(jest.getTimerCount()).toBe(1);
    task.stop();
  });

  it('refuses a second task under a running task name, starting no timer', () => {
    let ticks = 0;
    const first = tasks.create('count', 1_000, () => ticks++).start();
    const second = tasks.create('count', 1_000, () => (ticks += 100));

    expect(() => second.start()).toThrow('a periodic task named "count" is already running');
    expect(second.running).toBe(false);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(1_000);
    expect(ticks).toBe(1);

    // The refused one's stop leaves the running one alone.
    second.stop();
    expect(first.running).toBe(true);
    expect(registry.getIntervals()).toEqual(['count']);
    first.stop();
  });

  it('is stopped when the registry clears it, and its owner stop is then a no-op', () => {
    let ticks = 0;
    const task = tasks.create('count', 1_000, () => ticks++).start();

    registry.deleteInterval('count');
    expect(task.running).toBe(false);
    jest.advanceTimersByTime(5_000);
    expect(ticks).toBe(0);
    expect(() => task.stop()).not.toThrow();
  });

  it('keeps a task made to run through the drain out of the registry', () => {
    let ticks = 0;
    const task = tasks.createThroughDrain('reaper', 1_000, () => ticks++).start();

    expect(registry.getIntervals()).toEqual([]);
    jest.advanceTimersByTime(2_000);
    expect(ticks).toBe(2);
    expect(task.running).toBe(true);
    task.stop();
    jest.advanceTimersByTime(2_000);
    expect(ticks).toBe(2);
    expect(task.running).toBe(false);
  });

  it('keeps no process alive: its timer is unref-d', () => {
    const unref = jest.fn();
    const timer = { unref } as unknown as NodeJS.Timeout;
    jest.spyOn(global, 'setInterval').mockReturnValue(timer);
    jest.spyOn(global, 'clearInterval').mockImplementation(() => undefined);

    tasks
      .create('idle', 1_000, () => undefined)
      .start()
      .stop();
    tasks
      .createThroughDrain('reaper', 1_000, () => undefined)
      .start()
      .stop();

    expect(unref).toHaveBeenCalledTimes(2);
  });

  it('logs a tick that throws or rejects and keeps ticking', async () => {
    let ticks = 0;
    const task = tasks
      .create('flaky', 1_000, () => {
        ticks++;
        if (ticks === 1) throw new Error('thrown');
        return Promise.reject(new Error('rejected'));
      })
      .start();

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

describe('PeriodicTasks in Nest applications', () => {
  const application = () =>
    Test.createTestingModule({ imports: [ScheduleModule.forRoot(), PeriodicModule] }).compile();

  it('has a registry per application, so two applications in one process share task names', async () => {
    const one = await application();
    const two = await application();
    await one.init();
    await two.init();
    expect(one.get(SchedulerRegistry)).not.toBe(two.get(SchedulerRegistry));

    const a = one
      .get(PeriodicTasks)
      .create('token refresh', 60_000, () => undefined)
      .start();
    const b = two
      .get(PeriodicTasks)
      .create('token refresh', 60_000, () => undefined)
      .start();
    expect(one.get(SchedulerRegistry).getIntervals()).toEqual(['token refresh']);
    expect(two.get(SchedulerRegistry).getIntervals()).toEqual(['token refresh']);

    a.stop();
    expect(b.running).toBe(true);
    await one.close();
    await two.close();
  });

  it('has ScheduleModule stop what is still registered when shutdown begins, not the drain tasks', async () => {
    const app = await application();
    await app.init();
    const background = app
      .get(PeriodicTasks)
      .create('poll', 60_000, () => undefined)
      .start();
    const drain = app.get(PeriodicTasks).createThroughDrain('reaper', 60_000, () => undefined);
    drain.start();

    await app.close();

    expect(background.running).toBe(false);
    expect(app.get(SchedulerRegistry).getIntervals()).toEqual([]);
    expect(drain.running).toBe(true);
    background.stop();
    drain.stop();
  });
});
