import { SingleFlight } from './single-flight';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  let sut: SingleFlight<string>;

  beforeEach(() => {
    sut = new SingleFlight<string>();
  });

  it.each([1, 2, 50, 500])(
    '%i concurrent calls run the work once and share its value',
    async (n) => {
      const gate = deferred<string>();
      let runs = 0;
      const work = (): Promise<string> => {
        runs += 1;
        return gate.promise;
      };

      const calls = Array.from({ length: n }, () => sut.run('uat/api.client', work));
      expect(sut.isRunning('uat/api.client')).toBe(true);
      gate.resolve('token-1');
      const results = await Promise.all(calls);

      expect(runs).toBe(1);
      expect(results).toEqual(Array<string>(n).fill('token-1'));
      expect(sut.size).toBe(0);
    },
  );

  it('shares a failure with every waiting caller, then forgets it', async () => {
    const gate = deferred<string>();
    const failure = new Error('idp down');
    let runs = 0;
    const failing = (): Promise<string> => {
      runs += 1;
      return gate.promise;
    };

    const calls = Array.from({ length: 10 }, () => sut.run('k', failing));
    gate.reject(failure);
    const outcomes = await Promise.allSettled(calls);

    expect(runs).toBe(1);
    expect(outcomes).toEqual(Array(10).fill({ status: 'rejected', reason: failure }));
    expect(sut.isRunning('k')).toBe(false);

    const next = await sut.run('k', () => {
      runs += 1;
      return Promise.resolve('token-2');
    });
    expect([runs, next]).toEqual([2, 'token-2']);
  });

  it('runs the work again for a call made after the previous one settled', async () => {
    let runs = 0;
    const work = (): Promise<string> => Promise.resolve(`token-${++runs}`);

    const first = await sut.run('k', work);
    const second = await sut.run('k', work);

    expect([first, second, runs]).toEqual(['token-1', 'token-2', 2]);
  });

  it('keeps different keys apart', async () => {
    const uat = deferred<string>();
    const prod = deferred<string>();
    const started: string[] = [];

    const starting = (name: string, gate: Deferred<string>) => (): Promise<string> => {
      started.push(name);
      return gate.promise;
    };

    const a = sut.run('uat/api.client', starting('uat', uat));
    const b = sut.run('production/api.client', starting('production', prod));
    const c = sut.run('uat/api.client', starting('uat again', uat));
    expect(sut.size).toBe(2);

    prod.resolve('prod-token');
    uat.resolve('uat-token');

    expect(await Promise.all([a, b, c])).toEqual(['uat-token', 'prod-token', 'uat-token']);
    expect(started).toEqual(['uat', 'production']);
    expect(sut.size).toBe(0);
  });
});
