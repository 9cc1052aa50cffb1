import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';

/** Largest request body accepted (a token request is a few hundred bytes). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Past this the sender is not a confused client but a flood: drop the connection. */
const DRAIN_LIMIT_BYTES = 1024 * 1024;

export const JSON_CONTENT_TYPE = 'application/json; charset=UTF-8';
export const HTML_CONTENT_TYPE = 'text/html; charset=UTF-8';

/** RFC 6749 §5.1: token responses, errors included, must not be cached. */
export const NO_STORE_HEADERS: OutgoingHttpHeaders = {
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
};

export type BodyResult =
  { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'aborted' };

/**
 * Reads the whole body up to `limit` bytes. An oversized body is drained (not stored) so the
 * client still receives the 413: answering mid-upload and closing would look like a
 * connection reset to most HTTP clients.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) {
        req.socket.destroy();
        settle({ ok: false, reason: 'aborted' });
      } else if (size <= limit) {
        chunks.push(chunk);
      }
    });
    req.on('end', () =>
      settle(
        size > limit
          ? { ok: false, reason: 'too_large' }
          : { ok: true, body: Buffer.concat(chunks) },
      ),
    );
    req.on('error', () => settle({ ok: false, reason: 'aborted' }));
    req.on('close', () => settle({ ok: false, reason: 'aborted' }));
  });
}

/** Whether the client takes gzip (`gzip` or `*` listed with a non-zero q). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    if (coding.trim() !== 'gzip' && coding.trim() !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * Sends a complete answer with an exact Content-Length, gzipped when the client accepts it
 * (as IdentityServer behind a compressing proxy does, which CAS clients must cope with).
 */
export function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.destroyed) return;
  let payload = Buffer.from(body, 'utf8');
  const out: OutgoingHttpHeaders = { 'Content-Type': contentType, ...headers };
  if (payload.length > 0 && acceptsGzip(req.headers['accept-encoding'])) {
    payload = gzipSync(payload);
    out['Content-Encoding'] = 'gzip';
    out.Vary = 'Accept-Encoding';
  }
  out['Content-Length'] = payload.length;
  res.writeHead(status, out);
  res.end(payload);
}

export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  send(req, res, status, JSON_CONTENT_TYPE, JSON.stringify(value), headers);
}
