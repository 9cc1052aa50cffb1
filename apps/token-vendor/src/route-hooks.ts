import type { RouteOptions } from 'fastify';

type RouteHookName = 'preParsing' | 'onResponse';

/**
 * Adds a hook to one route as it is registered (Fastify's `onRoute`), after the hooks the route
 * already has. Fastify accepts a route hook as one function or an array of them.
 */
export function addRouteHook(route: RouteOptions, name: RouteHookName, hook: unknown): void {
  const hooks = route as unknown as Record<RouteHookName, unknown>;
  const existing: unknown = hooks[name];
  const before: unknown[] =
    existing === undefined ? [] : Array.isArray(existing) ? (existing as unknown[]) : [existing];
  hooks[name] = before.concat([hook]);
}
