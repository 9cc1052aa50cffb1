import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ConfigError, loadConfiguration } from '@app/config';
import { PeriodicTasks } from '@app/periodic';
import { createTokenVendorApp, listenTokenVendor } from './create-app';

/** In-flight requests get this long to finish after SIGTERM; the chart's grace period is longer. */
export const DRAIN_TIMEOUT_MS = 10_000;

/**
 * Production entry point. Configuration is validated before anything starts: a bad file or
 * environment stops the process with one message naming every bad field.
 */
async function main(): Promise<void> {
  let configuration;
  try {
    configuration = loadConfiguration(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(
        `${JSON.stringify({ level: 'fatal', msg: e.message, problems: e.problems })}\n`,
      );
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
  const app = await createTokenVendorApp({ configuration });
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.once(signal, () => void shutdown(app, signal));
  await listenTokenVendor(app, configuration.runtime);
}

/**
 * SIGTERM: stop the background jobs (ScheduleModule), stop accepting, let in-flight requests
 * finish, release held locks, close Redis (the modules' shutdown hooks), then exit 0. Nest's
 * own shutdown hooks are not used: they re-raise the signal, which makes the exit code 143.
 */
async function shutdown(app: NestFastifyApplication, signal: string): Promise<void> {
  const log = (msg: string): boolean =>
    process.stdout.write(
      `${JSON.stringify({ level: 'info', time: new Date().toISOString(), service: 'token-vendor', msg, signal })}\n`,
    );
  log('shutting down: draining in-flight requests');
  const deadline = setTimeout(() => {
    log('drain timed out; exiting');
    process.exit(1);
  }, DRAIN_TIMEOUT_MS);
  deadline.unref();
  // Keep-alive connections that go idle during the drain would hold the close open: reap them.
  const server = app.getHttpServer();
  // Through the drain (ScheduleModule clears its registry before the HTTP server closes). Not
  // stopped: it ends with the process, which exits right after the close.
  app
    .get(PeriodicTasks)
    .createThroughDrain('idle connection reaper', 100, () => server.closeIdleConnections())
    .start();
  try {
    await app.close();
    log('shut down cleanly');
    process.exit(0);
  } catch (e) {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', msg: 'shutdown failed', err: { message: (e as Error).message } })}\n`,
    );
    process.exit(1);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(
    `${JSON.stringify({ level: 'fatal', msg: 'start failed', err: { message: (e as Error).message } })}\n`,
  );
  process.exit(1);
});
