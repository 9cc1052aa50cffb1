/**
 * Process entry of the identity sandbox (`node dist/apps/identity-sandbox/main.js`), configured
 * by SANDBOX_* variables (see sandbox-env.ts). Logs are JSON lines on stdout; no secret or token
 * is ever written.
 */
import { readSandboxEnv } from './sandbox-env';
import { startIdentitySandbox } from './sandbox-server';
import type { SandboxLogEntry } from './types';

function logLine(level: 'info' | 'error', fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), ...fields })}\n`);
}

async function main(): Promise<void> {
  const { options, clientsSource } = readSandboxEnv(process.env);
  const sandbox = await startIdentitySandbox({
    ...options,
    log: (entry: SandboxLogEntry) => logLine('info', { ...entry }),
  });
  logLine('info', {
    msg: 'identity sandbox listening',
    url: sandbox.url,
    tokenUrl: sandbox.tokenUrl,
    issuer: options.issuer,
    expiresIn: options.expiresIn,
    clients: options.clients.map((client) => client.clientId),
    clientsSource,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logLine('info', { msg: 'identity sandbox stopping', signal });
    sandbox.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  // SandboxInputError messages name the variable and never contain a secret.
  logLine('error', { msg: 'identity sandbox failed to start', error: (error as Error).message });
  process.exit(1);
});
