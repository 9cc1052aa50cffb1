import { ConfigError, loadConfiguration } from '@app/config';
import { createTokenVendorApp } from './create-app';

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
      process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: e.message, problems: e.problems })}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw e;
  }
  const app = await createTokenVendorApp({ configuration });
  await app.listen({ port: configuration.runtime.port, host: configuration.runtime.host });
}

main().catch((e: unknown) => {
  process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: 'start failed', err: { message: (e as Error).message } })}\n`);
  process.exit(1);
});
