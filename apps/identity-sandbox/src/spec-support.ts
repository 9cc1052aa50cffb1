/**
 * Helpers shared by this app's specs (kept free of jest globals so the app's tsconfig, which
 * has no jest types, still compiles it). Not exported from index.ts.
 */
import { request } from 'node:http';
import type { RunningSandbox } from './types';

export const DEMO_ID = 'demo.client';
export const DEMO_SECRET = 'demo-secret-not-real';
export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** POSTs a form to the token endpoint; params are encoded as a browser form would. */
export function postToken(
  sandbox: RunningSandbox,
  params: Record<string, string>,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(sandbox.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': FORM_CONTENT_TYPE, accept: 'application/json', ...headers },
    body: new URLSearchParams(params).toString(),
    signal,
  });
}

/** The demo client's credentials in the body (client_secret_post). */
export function demoParams(extra: Record<string, string> = {}): Record<string, string> {
  return {
    grant_type: 'client_credentials',
    client_id: DEMO_ID,
    client_secret: DEMO_SECRET,
    ...extra,
  };
}

export interface DecodedJwt {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: string;
  signature: Buffer;
}

export function decodeJwt(token: string): DecodedJwt {
  const [header = '', payload = '', signature = ''] = token.split('.');
  const part = (text: string): Record<string, unknown> =>
    JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Record<string, unknown>;
  return {
    header: part(header),
    payload: part(payload),
    signingInput: `${header}.${payload}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A plain node:http request that returns the bytes as sent (fetch would gunzip them). */
export function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  body?: string | Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A parsed JSON answer, loosely typed for assertions (token, error, JWKS and control answers). */
export interface JsonAnswer {
  access_token: string;
  expires_in?: unknown;
  token_type?: string;
  scope?: string;
  error?: string;
  error_description?: string;
  keys: Array<{ kid: string; n: string } & Record<string, unknown>>;
  [key: string]: unknown;
}

export async function jsonOf(res: Response): Promise<JsonAnswer> {
  return (await res.json()) as JsonAnswer;
}
