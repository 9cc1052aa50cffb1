import { readFileSync } from 'node:fs';
import { parseClients } from './client-registry';
import { DEMO_CLIENTS } from './demo-clients';
import { SandboxInputError } from './sandbox-input-error';
import { DEFAULT_EXPIRES_IN } from './sandbox-server';
import { validateExpiresIn, validatePort } from './settings-validation';
import type { SandboxClient, SandboxOptions } from './types';

export const DEFAULT_SANDBOX_PORT = 4000;
export const DEFAULT_SANDBOX_HOST = '0.0.0.0';

/** What the process entry needs: the options plus where they came from, for the start line. */
export interface SandboxEnvConfig {
  options: Required<Pick<SandboxOptions, 'port' | 'host' | 'expiresIn' | 'issuer' | 'clients'>> &
    Pick<SandboxOptions, 'audience'>;
  clientsSource: 'demo' | 'inline' | 'file';
}

/**
 * Reads SANDBOX_* variables. Every invalid value is an error naming the variable: a sandbox that
 * silently fell back to defaults would hand a docker-compose setup the wrong clients.
 */
export function readSandboxEnv(env: NodeJS.ProcessEnv): SandboxEnvConfig {
  const port = validatePort(
    integer(env.SANDBOX_PORT, DEFAULT_SANDBOX_PORT, 'SANDBOX_PORT'),
    'SANDBOX_PORT',
  );
  const expiresIn = validateExpiresIn(
    integer(env.SANDBOX_EXPIRES_IN, DEFAULT_EXPIRES_IN, 'SANDBOX_EXPIRES_IN'),
    'SANDBOX_EXPIRES_IN',
  );
  const { clients, source } = readClients(env.SANDBOX_CLIENTS);
  return {
    options: {
      port,
      host: nonBlank(env.SANDBOX_HOST) ?? DEFAULT_SANDBOX_HOST,
      expiresIn,
      issuer: nonBlank(env.SANDBOX_ISSUER) ?? `http://localhost:${port}`,
      audience: nonBlank(env.SANDBOX_AUDIENCE),
      clients,
    },
    clientsSource: source,
  };
}

/** SANDBOX_CLIENTS: inline JSON when it starts with '[', otherwise the path of a JSON file. */
function readClients(value: string | undefined): {
  clients: SandboxClient[];
  source: SandboxEnvConfig['clientsSource'];
} {
  const raw = nonBlank(value);
  if (raw === undefined) return { clients: [...DEMO_CLIENTS], source: 'demo' };
  const inline = raw.startsWith('[');
  let text = raw;
  if (!inline) {
    try {
      text = readFileSync(raw, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new SandboxInputError(`SANDBOX_CLIENTS: cannot read the file ${raw} (${code})`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // The parser's message may quote the content, secrets included: keep it out.
    throw new SandboxInputError(`SANDBOX_CLIENTS: ${inline ? 'the value' : raw} is not valid JSON`);
  }
  try {
    return { clients: parseClients(parsed), source: inline ? 'inline' : 'file' };
  } catch (error) {
    throw new SandboxInputError(`SANDBOX_CLIENTS: ${(error as Error).message}`);
  }
}

function integer(value: string | undefined, fallback: number, name: string): number {
  const raw = nonBlank(value);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw))
    throw new SandboxInputError(`${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}

function nonBlank(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
