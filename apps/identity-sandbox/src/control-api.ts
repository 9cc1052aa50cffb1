import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateClient } from './client-registry';
import { parseFault } from './fault-injection';
import { readBody, sendJson } from './http-io';
import type { SandboxContext } from './sandbox-context';
import { SandboxInputError } from './sandbox-input-error';
import { validateExpiresIn } from './settings-validation';
import type { RunningSandbox, WorkloadTokenRequest } from './types';

export const CONTROL_PREFIX = '/_sandbox';

/** The operations the control API drives: the same ones RunningSandbox offers in process. */
export type SandboxControls = Pick<
  RunningSandbox,
  | 'stats'
  | 'setFault'
  | 'clearFault'
  | 'setExpiresIn'
  | 'resetStats'
  | 'requests'
  | 'workloadIssuer'
> & {
  setClient(clientId: string, secret: string, scopes?: string[]): void;
};

/**
 * /_sandbox/*: lets tests and demos drive a sandbox running as a separate process (docker-compose,
 * `npm start`). It has no authentication: the sandbox holds only throwaway demo credentials and
 * must never be exposed beyond a developer machine or a test network.
 * Returns false when the path is not a control route, so the caller answers 404.
 */
export async function handleControlRequest(
  ctx: SandboxContext,
  controls: SandboxControls,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<boolean> {
  const route = `${req.method ?? ''} ${path.slice(CONTROL_PREFIX.length)}`;
  try {
    if (route === 'GET /stats') {
      sendJson(req, res, 200, controls.stats());
    } else if (route === 'GET /requests') {
      sendJson(req, res, 200, controls.requests());
    } else if (route === 'GET /fault') {
      sendJson(req, res, 200, { fault: ctx.faults.peek() ?? null });
    } else if (route === 'POST /fault') {
      controls.setFault(parseFault(await readJson(req)));
      sendJson(req, res, 200, { fault: ctx.faults.peek() ?? null });
    } else if (route === 'DELETE /fault') {
      controls.clearFault();
      sendJson(req, res, 200, { fault: null });
    } else if (route === 'POST /reset') {
      controls.clearFault();
      controls.resetStats();
      sendJson(req, res, 200, controls.stats());
    } else if (route === 'PUT /expires-in') {
      const { seconds } = asObject(await readJson(req));
      controls.setExpiresIn(validateExpiresIn(seconds, 'seconds'));
      sendJson(req, res, 200, { expiresIn: ctx.settings.expiresIn });
    } else if (route === 'POST /workload-tokens') {
      // Mints a token shaped like a projected ServiceAccount token (body: WorkloadTokenRequest).
      const request = asObject(await readJson(req)) as WorkloadTokenRequest;
      sendJson(req, res, 200, { token: await controls.workloadIssuer.mint(request) });
    } else if (route === 'POST /workload-issuer/rotate') {
      const { keepPrevious } = asObject(await readJson(req));
      if (keepPrevious !== undefined && typeof keepPrevious !== 'boolean') {
        throw new SandboxInputError('keepPrevious must be true or false');
      }
      sendJson(req, res, 200, { kid: await controls.workloadIssuer.rotateKey(keepPrevious) });
    } else if (route === 'PUT /workload-issuer/availability') {
      const { available } = asObject(await readJson(req));
      if (typeof available !== 'boolean')
        throw new SandboxInputError('available must be true or false');
      controls.workloadIssuer.setAvailable(available);
      sendJson(req, res, 200, { available });
    } else if (route.startsWith('PUT /clients/')) {
      const clientId = decodePathSegment(route.slice('PUT /clients/'.length));
      const { secret, scopes } = asObject(await readJson(req));
      const client = validateClient({ clientId, secret, scopes });
      // No scopes in the body: a rotation, which keeps the client's scopes.
      controls.setClient(
        clientId,
        client.secret as string,
        scopes === undefined ? undefined : client.scopes,
      );
      sendJson(req, res, 200, { clientId });
    } else {
      return false;
    }
  } catch (error) {
    if (!(error instanceof SandboxInputError)) throw error;
    sendJson(req, res, 400, { error: 'invalid_request', error_description: error.message });
  }
  return true;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  if (!body.ok) throw new SandboxInputError('request body missing or larger than 64 KiB');
  try {
    return JSON.parse(body.body.toString('utf8')) as unknown;
  } catch {
    throw new SandboxInputError('request body must be JSON');
  }
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SandboxInputError('request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function decodePathSegment(segment: string): string {
  try {
    const decoded = decodeURIComponent(segment);
    if (decoded.length > 0 && !segment.includes('/')) return decoded;
  } catch {
    // fall through to the error below
  }
  throw new SandboxInputError('the client id in the path is missing or malformed');
}
