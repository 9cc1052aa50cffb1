import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchedulerRegistry } from '@nestjs/schedule';
import { PeriodicTasks } from '@app/periodic';
import type { CallerConfig, ConfigService } from '@app/config';
import type { ConfigReloader } from './config-reloader';
import type { SecretRotationService } from './secret-rotation.service';
import { SecretFileWatcher } from './secret-file.watcher';

describe('SecretFileWatcher: callers keySha256File', () => {
  let dir: string;
  let callers: CallerConfig[];
  let reload: jest.Mock;
  let reloadCallerKeys: jest.Mock;
  let checkAll: jest.Mock;
  let sut: SecretFileWatcher;

  const caller = (name: string, file?: string): CallerConfig => ({
    name,
    keyDigests: [Buffer.alloc(32)],
    inlineKeyDigests: [Buffer.alloc(32)],
    ...(file ? { keyDigestFile: join(dir, file) } : {}),
    clients: [],
    admin: false,
  });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'secret-file-watcher-'));
    writeFileSync(join(dir, 'a'), 'one\n');
    writeFileSync(join(dir, 'b'), 'one\n');
    callers = [caller('inline'), caller('a', 'a'), caller('b', 'b')];
    reload = jest.fn();
    reloadCallerKeys = jest.fn().mockReturnValue({ changed: [], withoutCredentials: [] });
    checkAll = jest.fn().mockResolvedValue(undefined);
    const config = {
      get service() {
        return { callers };
      },
    } as unknown as ConfigService;
    sut = new SecretFileWatcher(
      { checkAll } as unknown as SecretRotationService,
      config,
      {
        reload,
        reloadCallerKeys,
        warnAboutCallersWithoutCredentials: jest.fn(),
      } as unknown as ConfigReloader,
      new PeriodicTasks(new SchedulerRegistry()),
    );
  });
  afterEach(() => {
    sut.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes the files at start as the baseline and re-reads the caller keys only when one changed', async () => {
    await sut.onApplicationBootstrap();
    expect(await sut.checkCallerKeyFiles()).toBe(false);

    writeFileSync(join(dir, 'b'), 'one\ntwo\n');
    expect(await sut.checkCallerKeyFiles()).toBe(true);
    expect(reloadCallerKeys).toHaveBeenCalledTimes(1);
    expect(await sut.checkCallerKeyFiles()).toBe(false);
    expect(reloadCallerKeys).toHaveBeenCalledTimes(1);
    // The key files alone: the configuration file and client secrets are not reloaded.
    expect(reload).not.toHaveBeenCalled();
  });

  it('tries a refused read again on every poll, changed or not, until it succeeds', async () => {
    await sut.onApplicationBootstrap();
    reloadCallerKeys.mockImplementation(() => {
      throw new Error('Invalid configuration: callers[1].keySha256File: line 1');
    });

    writeFileSync(join(dir, 'a'), 'garbage\n');
    await sut.check();
    await sut.check();
    await sut.check();
    expect(reloadCallerKeys).toHaveBeenCalledTimes(3);
    expect(checkAll).toHaveBeenCalledTimes(3); // client secrets are still checked

    reloadCallerKeys.mockReturnValue({ changed: ['a'], withoutCredentials: [] });
    reloadCallerKeys.mockImplementation(undefined);
    await sut.check();
    expect(reloadCallerKeys).toHaveBeenCalledTimes(4);
    await sut.check();
    expect(reloadCallerKeys).toHaveBeenCalledTimes(4); // succeeded: back to change-driven
  });

  it('re-reads when a file is deleted (its keys are revoked)', async () => {
    await sut.onApplicationBootstrap();
    rmSync(join(dir, 'a'));

    expect(await sut.checkCallerKeyFiles()).toBe(true);
    expect(reloadCallerKeys).toHaveBeenCalledTimes(1);
  });

  it('does not hold a caller key check behind a slow secret check', async () => {
    await sut.onApplicationBootstrap();
    let release: () => void = () => undefined;
    checkAll.mockReturnValue(new Promise<void>((r) => (release = r)));
    const slow = sut.check();

    writeFileSync(join(dir, 'b'), 'changed\n');
    // Polls go on while the secret check hangs (bounded: the first one may still be stat-ing).
    for (let i = 0; i < 100 && reloadCallerKeys.mock.calls.length === 0; i++) {
      await sut.check();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(reloadCallerKeys).toHaveBeenCalledTimes(1);
    expect(checkAll).toHaveBeenCalledTimes(1); // the hung secret check is not piled up
    release();
    await slow;
  });

  it('records a file that appears in the configuration without reloading for it', async () => {
    await sut.onApplicationBootstrap();
    writeFileSync(join(dir, 'c'), 'new\n');
    callers = [...callers, caller('c', 'c')];

    expect(await sut.checkCallerKeyFiles()).toBe(false);
    writeFileSync(join(dir, 'c'), 'newer\n');
    expect(await sut.checkCallerKeyFiles()).toBe(true);
  });
});
