import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

/** The API's Content-Security-Policy: it serves JSON only, never a page to render or frame. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** helmet's settings: its defaults, minus the CSP (ours is set per path) and COEP (no pages). */
const HELMET_OPTIONS: HelmetOptions = {
  contentSecurityPolicy: false,
  crossOriginEmbedderPolicy: false,
  frameguard: { action: 'deny' }, // agrees with the CSP's frame-ancestors 'none'
};

/**
 * The headers helmet sets, computed once at start-up. helmet's answer depends only on its
 * options, never on the request, so running its middleware on every request (as the Fastify
 * plugin does) only repeats the same dozen header writes: on the cache-hit path that cost
 * about a third of the throughput (bench/results.md).
 */
export function helmetHeaders(options: HelmetOptions = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]): void {
      headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string): void {
      delete headers[name];
    },
  };
  let finished = false;
  helmet(options)(
    {} as IncomingMessage,
    recorder as unknown as ServerResponse,
    (error?: unknown) => {
      if (error) throw error instanceof Error ? error : new Error('helmet failed');
      finished = true;
    },
  );
  // helmet's middlewares are synchronous; if a future version were not, fail at start-up.
  if (!finished) throw new Error('helmet did not set its headers synchronously');
  return headers;
}

/**
 * Of helmet's headers, the ones that protect a JSON API (the OWASP REST Security Cheat Sheet's
 * list for all API answers, with Content-Type, Cache-Control and a CSP set below). The others
 * (Referrer-Policy, Cross-Origin-*, Origin-Agent-Cluster, X-DNS-Prefetch-Control,
 * X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection) act only on pages a
 * browser renders: the Swagger UI keeps them; on JSON answers they cost header processing on
 * every request (bench/results.md) and protect nothing.
 */
export const API_HEADERS_FROM_HELMET = [
  'Strict-Transport-Security',
  'X-Content-Type-Options',
  'X-Frame-Options',
] as const;

function pick(headers: Record<string, string>, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    if (headers[name] === undefined) throw new Error(`helmet no longer sets ${name}`);
    picked[name] = headers[name];
  }
  return picked;
}

export interface SecurityHeaderSets {
  /** Every answer except the Swagger UI: HSTS, nosniff, DENY, the API CSP, and no caching. */
  api: Readonly<Record<string, string>>;
  /** The Swagger UI page and its assets: all of helmet's headers, no CSP (it runs scripts). */
  swaggerUi: Readonly<Record<string, string>>;
}

/** The two header sets, built once; the answers' hook only picks one. */
export function securityHeaderSets(): SecurityHeaderSets {
  const fromHelmet = helmetHeaders();
  return {
    api: Object.freeze({
      ...pick(fromHelmet, API_HEADERS_FROM_HELMET),
      'Content-Security-Policy': API_CSP,
      // RFC 6749 §5.1 for token answers; every other answer carries nothing worth caching.
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
    }),
    swaggerUi: Object.freeze({ ...fromHelmet }),
  };
}

/** The Swagger UI page and its assets, which need scripts and styles the API CSP forbids. */
export function isSwaggerUiPath(url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url.startsWith('/docs?');
}
