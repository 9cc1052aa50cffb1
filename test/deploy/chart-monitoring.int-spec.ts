/**
 * The chart's PrometheusRule and Grafana dashboard: every expression parses as PromQL
 * (Prometheus's own grammar, @prometheus-io/lezer-promql), and every metric and label it
 * names is one the service exports.
 */
import { parser } from '@prometheus-io/lezer-promql';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { SystemClock } from '@app/clock';
import { MetricsService } from '@app/observability';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { stringify } from 'yaml';
import { ALL_ON, K8sObject, Loose, ofKind, one, render } from './helm';

/** Labels Prometheus adds to every scraped series (ServiceMonitor target labels), and `le`. */
const TARGET_LABELS = ['namespace', 'service', 'pod', 'instance', 'job', 'container', 'le'];
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/**
 * Metric names and their labels, as the service's own MetricsService registers them (the real
 * registry, not a reading of its source), beside prom-client's default ones.
 */
function declaredMetrics(): Map<string, string[]> {
  const service = new MetricsService(new SystemClock());
  const declared = new Map<string, string[]>();
  for (const metric of service.registry.getMetricsAsArray()) {
    const { name, labelNames } = metric as unknown as { name: string; labelNames?: string[] };
    if (name.startsWith('token_vendor_')) declared.set(name, [...(labelNames ?? [])]);
  }
  return declared;
}

/** prom-client's default Node and process metrics, under their standard names. */
async function defaultMetricNames(): Promise<string[]> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = await registry.getMetricsAsJSON();
  return metrics.map((m) => m.name);
}

interface ParsedExpr {
  metrics: string[];
  labels: string[];
  errorAt: number | null;
}

/** Parses one PromQL expression: the metric names and label names it uses, or where it broke. */
function parsePromQL(expr: string): ParsedExpr {
  const cursor = parser.parse(expr).cursor();
  const result: ParsedExpr = { metrics: [], labels: [], errorAt: null };
  do {
    const text = expr.slice(cursor.from, cursor.to);
    if (cursor.type.isError && result.errorAt === null) result.errorAt = cursor.from;
    if (cursor.name === 'Identifier' && cursor.node.parent?.name === 'VectorSelector') {
      result.metrics.push(text);
    }
    if (cursor.name === 'LabelName') result.labels.push(text);
  } while (cursor.next());
  return result;
}

/** Grafana's variables, replaced with values Prometheus accepts. */
const fromGrafana = (expr: string) =>
  expr.replace(/\$__rate_interval/g, '5m').replace(/\$(namespace|service)/g, 'x');

describe('monitoring objects', () => {
  let known: Map<string, string[]>;
  let allLabels: Set<string>;

  beforeAll(async () => {
    known = declaredMetrics();
    for (const name of await defaultMetricNames()) known.set(name, []);
    allLabels = new Set([...TARGET_LABELS, ...[...known.values()].flat()]);
  });

  const baseName = (name: string) => {
    if (known.has(name)) return name;
    const suffix = HISTOGRAM_SUFFIXES.find((s) => name.endsWith(s));
    return suffix ? name.slice(0, -suffix.length) : name;
  };

  /** Checks one expression: it parses, and each metric and label it names exists. */
  function expectValid(expr: string, where: string) {
    const parsed = parsePromQL(expr);
    expect({ where, errorAt: parsed.errorAt }).toEqual({ where, errorAt: null });
    expect(parsed.metrics.length).toBeGreaterThan(0);
    for (const metric of parsed.metrics) {
      expect({ where, metric, known: known.has(baseName(metric)) }).toEqual({
        where,
        metric,
        known: true,
      });
    }
    for (const label of parsed.labels) {
      expect({ where, label, known: allLabels.has(label) }).toEqual({ where, label, known: true });
    }
  }

  it('the checks themselves catch a broken expression and an unknown metric', () => {
    expect(parsePromQL('sum(rate(token_vendor_refreshes_total[5m])').errorAt).not.toBeNull();
    expect(parsePromQL('sum by (client_id) (rate(x_total[5m]))').metrics).toEqual(['x_total']);
    expect(known.has('token_vendor_refreshes_total')).toBe(true);
    expect(known.has('process_cpu_seconds_total')).toBe(true);
    expect(known.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(known.has('token_vendor_refreshes')).toBe(false);
  });

  describe('PrometheusRule', () => {
    const objects = render({ files: [ALL_ON] });
    const rule = one(objects, 'PrometheusRule');
    const rules: Loose[] = rule.spec.groups.flatMap((g: Loose) => g.rules);

    it('alerts on what an operator must act on', () => {
      expect(rules.map((r) => r.alert)).toEqual([
        'TokenVendorRefreshFailing',
        'TokenVendorTokenTtlBelowMinTtl',
        'TokenVendorStoreErrors',
        'TokenVendorSecretRotationRefused',
        'TokenVendorIdpRejecting',
        'TokenVendorIdpSlow',
      ]);
      for (const r of rules) {
        expect(['warning', 'critical']).toContain(r.labels.severity);
        expect(r.labels.team).toBe('platform');
        expect(r.annotations.summary).toEqual(expect.any(String));
      }
      expect(rule.metadata.labels.release).toBe('kube-prometheus-stack');
    });

    it('has expressions that parse and name only metrics the service exports', () => {
      for (const r of rules) expectValid(r.expr, r.alert);
    });

    it('selects only the series of this release, as the ServiceMonitor labels them', () => {
      const service = one(objects, 'Service').metadata.name;
      for (const r of rules) {
        const selectors = r.expr.match(/\{[^}]*\}/g) as string[];
        expect(selectors.length).toBeGreaterThan(0);
        for (const s of selectors) expect(s).toContain(`namespace="tokens",service="${service}"`);
      }
    });

    it('takes its thresholds from values and the configured minTtl', () => {
      const expr = (objects: K8sObject[], alert: string) =>
        ofKind(objects, 'PrometheusRule')[0]
          .spec.groups[0].rules.find((r: Loose) => r.alert === alert)
          .expr.trim();
      // A values file: `--set` would hand helm the fractions as strings.
      const dir = mkdtempSync(join(tmpdir(), 'chart-rule-'));
      const file = join(dir, 'values.yaml');
      writeFileSync(
        file,
        stringify({
          config: { refresh: { minTtlSeconds: 90 } },
          prometheusRule: {
            enabled: true,
            idpLatencyP95Seconds: 0.5,
            upstreamRejectionRatio: 0.25,
          },
        }),
      );
      const custom = (() => {
        try {
          return render({ files: [file] });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      expect(expr(custom, 'TokenVendorTokenTtlBelowMinTtl')).toMatch(/< 90$/);
      expect(expr(custom, 'TokenVendorIdpSlow')).toMatch(/> 0\.5$/);
      expect(expr(custom, 'TokenVendorIdpRejecting')).toMatch(/> 0\.25$/);
    });
  });

  describe('Grafana dashboard', () => {
    const objects = render({ files: [ALL_ON] });
    const configMap = ofKind(objects, 'ConfigMap').find((c) =>
      c.metadata.name.endsWith('-dashboard'),
    )!;
    const dashboard = JSON.parse(configMap.data['token-vendor.json']);
    const panels: Loose[] = dashboard.panels.filter((p: Loose) => p.type !== 'row');

    it('is a ConfigMap the Grafana sidecar picks up', () => {
      expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
      expect(configMap.metadata.annotations).toEqual({ grafana_folder: 'Platform' });
      expect(dashboard).toMatchObject({ uid: 'token-vendor', title: 'token-vendor' });
      expect(ofKind(render(), 'ConfigMap')).toHaveLength(1);
    });

    it('has panels whose queries parse and name only metrics the service exports', () => {
      expect(panels.length).toBeGreaterThanOrEqual(10);
      for (const panel of panels) {
        expect(panel.targets.length).toBeGreaterThan(0);
        for (const t of panel.targets) expectValid(fromGrafana(t.expr), panel.title);
      }
    });

    it('lays its panels out on the 24-column grid without overlap, each with its own id', () => {
      const all: Loose[] = dashboard.panels;
      expect(new Set(all.map((p) => p.id)).size).toBe(all.length);
      const cells = new Set<string>();
      for (const { gridPos: g } of all) {
        expect(g.x + g.w).toBeLessThanOrEqual(24);
        for (let x = g.x; x < g.x + g.w; x++) {
          for (let y = g.y; y < g.y + g.h; y++) {
            expect(cells.has(`${x},${y}`)).toBe(false);
            cells.add(`${x},${y}`);
          }
        }
      }
    });

    it('shows caller latency, refused callers, IdP latency and the process', () => {
      const exprs = panels.flatMap((p) => p.targets.map((t: Loose) => t.expr)).join('\n');
      for (const metric of [
        'token_vendor_token_request_duration_seconds_bucket',
        'token_vendor_auth_failures_total',
        'token_vendor_upstream_request_duration_seconds_bucket',
        'token_vendor_token_ttl_seconds',
        'token_vendor_store_errors_total',
        'process_cpu_seconds_total',
        'nodejs_eventloop_lag_seconds',
      ]) {
        expect(exprs).toContain(metric);
      }
    });

    it('scopes every query to the chosen namespace and service', () => {
      for (const panel of panels) {
        for (const t of panel.targets) {
          expect(t.expr).toContain('namespace="$namespace",service="$service"');
        }
      }
      const variables = dashboard.templating.list.map((v: Loose) => v.name);
      expect(variables).toEqual(['datasource', 'namespace', 'service']);
    });
  });
});
