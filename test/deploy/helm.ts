/** Runs helm on the chart and parses what `helm template` renders. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { helmBinary } from './helm-binary';

export const CHART = join(__dirname, '..', '..', 'helm', 'token-vendor');
export const ALL_ON = join(CHART, 'ci', 'all-on-values.yaml');

// Rendered YAML is walked freely: the assertions are its type checks.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

/** A rendered Kubernetes object. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: Loose };
  [key: string]: Loose;
}

export interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[]): HelmResult {
  const binary = helmBinary();
  // Helm's own config, cache and data stay beside the binary, never in ~/.config.
  const helmHome = join(dirname(binary), 'home');
  const res = spawnSync(binary, args, {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      HOME: helmHome,
      HELM_CACHE_HOME: join(helmHome, 'cache'),
      HELM_CONFIG_HOME: join(helmHome, 'config'),
      HELM_DATA_HOME: join(helmHome, 'data'),
      NO_COLOR: '1',
    },
  });
  if (res.error) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** `--set` pairs and values files as helm arguments. */
export interface ValuesOptions {
  files?: string[];
  set?: Record<string, string | number | boolean>;
  /** The cluster version templates see (`--kube-version`); helm's default otherwise. */
  kubeVersion?: string;
  /**
   * Render without values.schema.json: for template checks on configuration fields the
   * service schema (and so the generated chart schema) does not have yet.
   */
  skipSchema?: boolean;
}

function valuesArgs({ files = [], set = {} }: ValuesOptions): string[] {
  return [
    ...files.flatMap((f) => ['-f', f]),
    ...Object.entries(set).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`]),
  ];
}

function renderArgs(values: ValuesOptions): string[] {
  return [
    ...valuesArgs(values),
    ...(values.kubeVersion ? ['--kube-version', values.kubeVersion] : []),
    ...(values.skipSchema ? ['--skip-schema-validation'] : []),
  ];
}

export function lint(values: ValuesOptions = {}): HelmResult {
  return helm(['lint', '--strict', CHART, ...valuesArgs(values)]);
}

/** Renders the chart, throwing with helm's message when rendering fails. */
export function render(values: ValuesOptions = {}): K8sObject[] {
  const res = helm(['template', 'tv', CHART, '--namespace', 'tokens', ...renderArgs(values)]);
  if (res.status !== 0) throw new Error(res.stderr.trim());
  return parseAllDocuments(res.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw doc.errors[0];
      return doc.toJS() as K8sObject | null;
    })
    .filter((obj): obj is K8sObject => obj !== null);
}

/** What `helm install --dry-run` prints as NOTES (rendered without a cluster). */
export function notes(values: ValuesOptions = {}): string {
  const res = helm([
    'install',
    'tv',
    CHART,
    '--namespace',
    'tokens',
    '--dry-run=client',
    ...renderArgs(values),
  ]);
  if (res.status !== 0) throw new Error(res.stderr.trim());
  const at = res.stdout.indexOf('NOTES:');
  if (at < 0) throw new Error('no NOTES in the output');
  return res.stdout.slice(at);
}

/** The ConfigMap holding the service configuration (config.yaml). */
export function serviceConfigMap(objects: K8sObject[]): K8sObject {
  const found = ofKind(objects, 'ConfigMap').filter((c) => c.data?.['config.yaml'] !== undefined);
  if (found.length !== 1)
    throw new Error(`expected one configuration ConfigMap, got ${found.length}`);
  return found[0];
}

/** Objects `helm install` creates (no `helm test` hook). */
export function installed(objects: K8sObject[]): K8sObject[] {
  return objects.filter((o) => !o.metadata.annotations?.['helm.sh/hook']);
}

export function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function one(objects: K8sObject[], kind: string): K8sObject {
  const found = ofKind(objects, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, got ${found.length}`);
  return found[0];
}

/** Every value stored under `key` anywhere inside `value`. */
export function findKey(value: unknown, key: string): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => findKey(v, key));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [...(k === key ? [v] : []), ...findKey(v, key)]);
}
