import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startRedisServer, type ThrowawayRedis } from './redis-server';

/**
 * Chooses the Redis the integration and e2e suites share, as TOOLBOX.md says: REDIS_URL if
 * set; else a container through testcontainers when a Docker engine answers; else a
 * `redis-server` this run starts on a free port (and the teardown stops). The URL reaches the
 * test workers as TEST_REDIS_URL. Tests isolate themselves with a unique key prefix and never
 * flush it.
 */
export default async function globalSetup(): Promise<void> {
  // Multi-process suites run the production entry point (dist/apps/*/main.js): build it when
  // a source is newer than the build, as `npm start` does.
  execFileSync(process.execPath, [join(__dirname, '../../scripts/build-if-needed.js')], {
    stdio: 'inherit',
  });
  if (process.env.REDIS_URL) {
    process.env.TEST_REDIS_URL = process.env.REDIS_URL;
    return;
  }
  if (dockerEngineAnswers()) {
    const { GenericContainer } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    process.env.TEST_REDIS_URL = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    (globalThis as { __stopTestRedis?: () => Promise<unknown> }).__stopTestRedis = () =>
      container.stop();
    return;
  }
  const redis: ThrowawayRedis = await startRedisServer();
  process.env.TEST_REDIS_URL = redis.url;
  (globalThis as { __stopTestRedis?: () => Promise<unknown> }).__stopTestRedis = () => redis.stop();
}

function dockerEngineAnswers(): boolean {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
      stdio: 'pipe',
      timeout: 5000,
    });
    return true;
  } catch {
    return false;
  }
}
