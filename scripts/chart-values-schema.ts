/**
 * `npm run chart:schema`: writes the `config` block of helm/token-vendor/values.schema.json
 * from the service's own zod schema (@app/config), so `helm lint` / `helm install` refuse
 * what the service would refuse at start (a typo anywhere under `config`). Everything else
 * in values.schema.json (the chart's own values) is hand-written and kept as it is.
 * test/deploy/chart-values-schema.int-spec.ts fails when the committed file is stale.
 */
import { serviceConfigSchema } from '@app/config';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export const VALUES_SCHEMA_PATH = join(
  __dirname,
  '..',
  'helm',
  'token-vendor',
  'values.schema.json',
);
export const REGENERATE_COMMAND = 'npm run chart:schema';

type JsonSchema = { [key: string]: unknown };

/** A Secret key name (what `data` of a Secret accepts), the form of a client's `secretKey`. */
export const SECRET_KEY_NAME = '^[-._a-zA-Z0-9]+$';
/** Chart-only client field: it names the key in the client-secrets Secret and is not rendered. */
const SECRET_KEY_PROPERTY: JsonSchema = {
  description:
    'chart only: the key of this client in the client-secrets Secret (default: <environment>.<clientId>, characters a Secret key cannot hold replaced by "_"); not written to the configuration file',
  type: 'string',
  pattern: SECRET_KEY_NAME,
  maxLength: 253,
};
/** What a caller may authenticate with; those the service schema has form an anyOf. */
const CALLER_KEY_SOURCES = ['keySha256', 'keySha256File', 'kubernetes', 'jwt'];
const GENERATED_PREFIX = 'config.';

const isObject = (v: unknown): v is JsonSchema =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The object schemas a schema stands for: itself, or the branches of its anyOf / oneOf. */
function objectBranches(schema: unknown): JsonSchema[] {
  if (!isObject(schema)) return [];
  const branches = [...asArray(schema.anyOf), ...asArray(schema.oneOf), ...asArray(schema.allOf)];
  const nested = branches.flatMap(objectBranches);
  return isObject(schema.properties) ? [schema, ...nested] : nested;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Calls visit on every schema object inside value (depth first). */
function walk(value: unknown, visit: (schema: JsonSchema) => void): void {
  if (Array.isArray(value)) return value.forEach((v) => walk(v, visit));
  if (!isObject(value)) return;
  visit(value);
  Object.values(value).forEach((v) => walk(v, visit));
}

/**
 * JavaScript regular expression syntax Go's regexp (which Helm's schema validator uses) cannot
 * compile: lookaround and backreferences. Such a pattern is left to the service's own check.
 */
const NOT_IN_GO_REGEXP = /\(\?<?[=!]|\\[1-9]/;

function dropUnportablePatterns(config: JsonSchema): void {
  walk(config, (schema) => {
    if (typeof schema.pattern === 'string' && NOT_IN_GO_REGEXP.test(schema.pattern)) {
      delete schema.pattern;
    }
  });
}

/**
 * What the pod needs beyond the service's rules: file paths are absolute (a relative one
 * would resolve inside the ConfigMap folder), a client may name its Secret key, a caller
 * names at least one key source (a zod refinement JSON Schema cannot carry).
 */
function addChartRules(config: JsonSchema): void {
  walk(config, (schema) => {
    if (!isObject(schema.properties)) return;
    for (const [name, property] of Object.entries(schema.properties)) {
      if (name.endsWith('File') && isObject(property) && property.type === 'string') {
        property.pattern ??= '^/';
      }
    }
  });
  const properties = config.properties as JsonSchema;
  const clients = properties.clients as JsonSchema | undefined;
  for (const client of objectBranches(clients?.items)) {
    (client.properties as JsonSchema).secretKey = SECRET_KEY_PROPERTY;
  }
  const callers = properties.callers as JsonSchema | undefined;
  for (const caller of objectBranches(callers?.items)) {
    const sources = CALLER_KEY_SOURCES.filter((s) => s in (caller.properties as JsonSchema));
    if (sources.length > 0 && caller.anyOf === undefined) {
      caller.anyOf = sources.map((s) => ({ required: [s] }));
    }
  }
}

/** Moves the generated definitions into the root ones (prefixed) and rewrites their $refs. */
function hoistDefinitions(config: JsonSchema, root: JsonSchema): void {
  const definitions = isObject(config.definitions) ? config.definitions : {};
  delete config.definitions;
  const rootDefinitions = (root.definitions ??= {}) as JsonSchema;
  for (const key of Object.keys(rootDefinitions)) {
    if (key.startsWith(GENERATED_PREFIX)) delete rootDefinitions[key];
  }
  const rewrite = (schema: JsonSchema) => {
    if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/definitions/')) {
      schema.$ref = `#/definitions/${GENERATED_PREFIX}${schema.$ref.slice('#/definitions/'.length)}`;
    } else if (schema.$ref === '#') {
      schema.$ref = '#/properties/config';
    }
  };
  walk(config, rewrite);
  for (const [key, definition] of Object.entries(definitions)) {
    walk(definition, rewrite);
    rootDefinitions[`${GENERATED_PREFIX}${key}`] = definition;
  }
}

/**
 * The JSON Schema of `config`: what the service accepts as its configuration file
 * (`schema` is the service's; a test hands in others to check the chart's additions).
 */
export function configJsonSchema(
  root: JsonSchema = {},
  schema: z.ZodType = serviceConfigSchema,
): JsonSchema {
  const config = z.toJSONSchema(schema, {
    // Values are what a user writes: defaults make fields optional.
    io: 'input',
    // Helm 3 validates draft-07; Helm 4 reads the $schema given at the root.
    target: 'draft-7',
    // A transform or refinement is checked by the service at start; the shape is checked here.
    unrepresentable: 'any',
  }) as JsonSchema;
  delete config.$schema;
  hoistDefinitions(config, root);
  dropUnportablePatterns(config);
  addChartRules(config);
  return {
    description: `The service configuration file, checked as the service checks it. GENERATED from the service's schema by \`${REGENERATE_COMMAND}\`: do not edit by hand.`,
    ...config,
  };
}

/** values.schema.json as it should be: the committed hand-written part, `config` generated. */
export function valuesSchemaText(committed: string): string {
  const root = JSON.parse(committed) as JsonSchema;
  const properties = root.properties as JsonSchema;
  properties.config = configJsonSchema(root);
  return `${JSON.stringify(root, null, 2)}\n`;
}

if (require.main === module) {
  const committed = readFileSync(VALUES_SCHEMA_PATH, 'utf8');
  const next = valuesSchemaText(committed);
  writeFileSync(VALUES_SCHEMA_PATH, next);
  process.stdout.write(
    `${VALUES_SCHEMA_PATH}: ${next === committed ? 'already up to date' : 'config block regenerated'}\n`,
  );
}
