import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallerConfig, ConfigService } from '@app/config';
import type { ConfigReloader } from './config-reloader';
import type { SecretRotationService } from './secret-rotation.service';
import { SecretFileWatcher } from './secret-file.watcher';

describe('SecretFileWatcher: callers keySha256File', () => {
  let dir: string;
  let callers: CallerConfig[];
  let reload: jest.Mock;
  let checkAll: jest.Mock;
  let sut: SecretFileWatcher;

  const caller = (name: string, file?: string): CallerConfig => ({
    name,
    keyDigests: [Buffer.alloc(32)],
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
    checkAll = jest.fn().mockResolvedValue(undefined);
    const config = {
      get service() {
        return { callers };
      },
    } as unknown as ConfigService;
    sut = new SecretFileWatcher({ checkAll } as unknown as SecretRotationService, config, {
      reload,
    } as unknown as ConfigReloader);
  });
  afterEach(() => {
    sut.onApplicationShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('takes the files at start as the baseline and reloads only when one changed', async () => {
    await sut.onApplicationBootstrap();
    expect(await sut.checkCallerKeyFiles()).toBe(false);

    writeFileSync(join(dir, 'b'), 'one\ntwo\n');
    expect(await sut.checkCallerKeyFiles()).toBe(true);
    expect(reload).toHaveBeenCalledTimes(1);
    expect(await sut.checkCallerKeyFiles()).toBe(false);
    expect(reload).toHaveBeenCalledTimes(1);
  });

  it('tries a refused file once per change, not once per poll, and again when it changes', async () => {
    await sut.onApplicationBootstrap();
    reload.mockImplementation(() => {
      throw new Error('Invalid configuration');
    });

    rmSync(join(dir, 'a'));
    await sut.check();
    await sut.check();
    expect(reload).toHaveBeenCalledTimes(1);
    expect(checkAll).toHaveBeenCalledTimes(2); // client secrets are still checked

    writeFileSync(join(dir, 'a'), 'back\n');
    await sut.check();
    expect(reload).toHaveBeenCalledTimes(2);
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
