/**
 * The chart's values.schema.json: its `config` block is generated from the service's own
 * zod schema (scripts/chart-values-schema.ts), so `helm lint --strict` refuses what the
 * service would refuse at start, and a stale committed file fails here.
 */
import { parseServiceConfig } from '@app/config';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import {
  configJsonSchema,
  REGENERATE_COMMAND,
  VALUES_SCHEMA_PATH,
  valuesSchemaText,
} from '../../scripts/chart-values-schema';
import { lint, Loose } from './helm';

const committed = readFileSync(VALUES_SCHEMA_PATH, 'utf8');

/** The first line where two texts differ, for a failure message a reader can act on. */
function firstDifference(a: string, b: string): string {
  const [left, right] = [a.split('\n'), b.split('\n')];
  const line = left.findIndex((l, i) => l !== right[i]);
  return `line ${line + 1}: committed ${JSON.stringify(left[line])}, generated ${JSON.stringify(right[line])}`;
}

describe('values.schema.json', () => {
  it('is what the generator writes from the service schema', () => {
    const generated = valuesSchemaText(committed);
    if (generated !== committed) {
      throw new Error(
        `helm/token-vendor/values.schema.json is stale: run \`${REGENERATE_COMMAND}\` and commit it (${firstDifference(committed, generated)})`,
      );
    }
  });

  it('has its config block overwritten by the generator, whatever was edited by hand', () => {
    const edited = JSON.parse(committed);
    edited.properties.config.properties.refresh.properties.ratoi = { type: 'number' };
    edited.properties.config.additionalProperties = true;
    expect(valuesSchemaText(JSON.stringify(edited))).toBe(committed);
  });

  it('keeps the hand-written chart values as they are', () => {
    const edited = JSON.parse(committed);
    edited.properties.replicaCount.maximum = 7;
    expect(JSON.parse(valuesSchemaText(JSON.stringify(edited))).properties.replicaCount).toEqual({
      ...JSON.parse(committed).properties.replicaCount,
      maximum: 7,
    });
  });
});

describe('the generator, on shapes the service schema may grow into', () => {
  const file = z.string().min(1);
  const base = { clientId: z.string(), environment: z.string() };
  const grown = z.strictObject({
    environments: z.record(
      z.string(),
      z.strictObject({ tokenUrl: z.string().optional(), caFile: file.optional() }),
    ),
    // Clients as a union by authentication method.
    clients: z.array(
      z.union([
        z.strictObject({ ...base, authMethod: z.literal('private_key_jwt'), privateKeyFile: file }),
        z.strictObject({ ...base, secretFile: file.optional() }),
      ]),
    ),
    callers: z.array(
      z.strictObject({
        name: z.string().regex(/^(?!admin$)[a-z]+$/),
        keySha256: z.array(z.string()).optional(),
        kubernetes: z.strictObject({ namespace: z.string() }).optional(),
      }),
    ),
  });
  const config = configJsonSchema({}, grown) as Loose;

  it('lets every client branch name its secretKey', () => {
    for (const branch of config.properties.clients.items.anyOf) {
      expect(branch.properties.secretKey).toMatchObject({ pattern: '^[-._a-zA-Z0-9]+$' });
      expect(branch.additionalProperties).toBe(false);
    }
  });

  it('requires absolute paths for every *File field, wherever it is', () => {
    expect(config.properties.environments.additionalProperties.properties.caFile.pattern).toBe(
      '^/',
    );
    const [jwt, secret] = config.properties.clients.items.anyOf;
    expect(jwt.properties.privateKeyFile.pattern).toBe('^/');
    expect(secret.properties.secretFile.pattern).toBe('^/');
  });

  it('requires a caller to name one of the key sources it has', () => {
    expect(config.properties.callers.items.anyOf).toEqual([
      { required: ['keySha256'] },
      { required: ['kubernetes'] },
    ]);
  });

  it("drops a pattern Go's regexp cannot compile (the service still checks it)", () => {
    expect(config.properties.callers.items.properties.name).toEqual({ type: 'string' });
  });
});

const CLIENT = {
  'config.clients[0].clientId': 'a.client',
  'config.clients[0].environment': 'uat',
  'clientSecrets.secrets.uat\\.a\\.client': 'fake',
};

describe('helm lint --strict with a typo or bad value under config', () => {
  it.each([
    ['config.clients[0].scopee', { ...CLIENT, 'config.clients[0].scopee': 'read' }, 'scopee'],
    ['config.refresh.ratoi', { 'config.refresh.ratoi': 0.5 }, 'ratoi'],
    [
      'config.environments.uat.tokenUrll',
      { 'config.environments.uat.tokenUrll': 'x' },
      'tokenUrll',
    ],
    [
      'config.callers[0].client',
      {
        'config.callers[0].name': 'a',
        'config.callers[0].keySha256': 'a'.repeat(64),
        'config.callers[0].client': 'x',
      },
      "'client' not allowed",
    ],
    ['config.refresh.ratio out of range', { 'config.refresh.ratio': 1.5 }, '/config/refresh/ratio'],
    [
      'config.refresh.minTtlSeconds not a number',
      { 'config.refresh.minTtlSeconds': 'soon' },
      '/config/refresh/minTtlSeconds',
    ],
    [
      'an unknown authMethod',
      { ...CLIENT, 'config.clients[0].authMethod': 'client_secret_jwt' },
      '/config/clients/0/authMethod',
    ],
    [
      'a client id with a space',
      { ...CLIENT, 'config.clients[0].clientId': 'a b' },
      '/config/clients/0/clientId',
    ],
    [
      'a bad environment name',
      { 'config.environments.u\\ at.tokenUrl': 'https://x' },
      "invalid propertyName 'u at'",
    ],
    [
      'a relative secretFile',
      { ...CLIENT, 'config.clients[0].secretFile': 'secrets/a' },
      '/config/clients/0/secretFile',
    ],
    ['an unknown top-level config key', { 'config.clientz': 'x' }, "'clientz' not allowed"],
  ])('fails on %s', (_name, set, message) => {
    const res = lint({ set });
    expect(res.stderr + res.stdout).toContain(message);
    expect(res.status).not.toBe(0);
  });

  it('passes the same values with the typo fixed', () => {
    const res = lint({ set: { ...CLIENT, 'config.clients[0].scope': 'read' } });
    expect(res.stderr + res.stdout).toContain('0 chart(s) failed');
    expect(res.status).toBe(0);
  });
});

describe('the chart schema and the service agree', () => {
  const environments = { uat: { tokenUrl: 'https://idp.example/token' } };
  it.each([
    ['a minimal configuration', { environments }, true],
    [
      'a client with every field',
      {
        environments,
        clients: [
          {
            clientId: 'a',
            environment: 'uat',
            secretFile: '/s/a',
            scope: 'x y',
            authMethod: 'client_secret_basic',
          },
        ],
      },
      true,
    ],
    ['a refresh ratio of 1', { environments, refresh: { ratio: 1 } }, false],
    [
      'an environment with a misspelt field',
      { environments: { uat: { tokenUrl: 'https://x', timeoutMS: 5 } } },
      false,
    ],
    [
      'a caller with a misspelt field',
      { environments, callers: [{ name: 'a', keySha256: 'a'.repeat(64), admn: true }] },
      false,
    ],
  ])('on %s', (_name, config, accepted) => {
    const serviceAccepts = (() => {
      try {
        parseServiceConfig(stringify(config), 'values', '/');
        return true;
      } catch {
        return false;
      }
    })();
    expect(serviceAccepts).toBe(accepted);
    const res = lintConfig(config);
    expect({ status: res.status === 0, out: res.stdout + res.stderr }).toMatchObject({
      status: accepted,
    });
  });
});

/** Lints the chart with the given `config` (through a values file). */
function lintConfig(config: object) {
  const dir = mkdtempSync(join(tmpdir(), 'chart-config-'));
  try {
    const file = join(dir, 'values.yaml');
    writeFileSync(file, stringify({ config }));
    return lint({ files: [file] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
