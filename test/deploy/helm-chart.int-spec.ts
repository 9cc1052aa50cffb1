/**
 * The Helm chart: lint, schema, and what `helm template` renders with the
 * default values and with every optional part on (ci/all-on-values.yaml).
 */
import { parse } from 'yaml';
import {
  ALL_ON,
  findKey,
  installed,
  K8sObject,
  lint,
  Loose,
  ofKind,
  one,
  render,
  serviceConfigMap,
  ValuesOptions,
} from './helm';

const CLIENT_SECRETS_DIR = '/var/run/secrets/token-vendor/clients';
const CALLER_DIGESTS_DIR = '/var/run/secrets/token-vendor/callers';
const METRICS_PORT = 9464;
/** The service drains for up to ~10 s after SIGTERM (README "Shutdown"). */
const DRAIN_SECONDS = 10;
const OPTIONAL_KINDS = [
  'HorizontalPodAutoscaler',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'ServiceMonitor',
  'PrometheusRule',
];
/** Redis and its keys: what more than one replica needs. */
const WITH_REDIS = {
  'redis.url': 'redis://redis:6379',
  'encryptionKeys.create': true,
  'encryptionKeys.keys': 'k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
};

const podSpec = (objects: K8sObject[]) => one(objects, 'Deployment').spec.template.spec;
const container = (objects: K8sObject[]) => {
  const containers = podSpec(objects).containers;
  expect(containers).toHaveLength(1);
  return containers[0];
};
const envVar = (objects: K8sObject[], name: string) =>
  container(objects).env.find((e: { name: string }) => e.name === name);
const renderedConfig = (objects: K8sObject[]) =>
  parse(serviceConfigMap(objects).data['config.yaml']);

/** Seconds the preStop hook pauses, whichever form it takes. */
function preStopSeconds(objects: K8sObject[]): number {
  const preStop = container(objects).lifecycle.preStop;
  if (preStop.sleep) return preStop.sleep.seconds;
  const [cmd, seconds, ...rest] = preStop.exec.command;
  expect([cmd, rest]).toEqual(['sleep', []]);
  return Number(seconds);
}

describe('helm lint --strict', () => {
  it.each([
    ['default values', {}],
    ['all-on values', { files: [ALL_ON] }],
  ])('passes with %s', (_name, values: ValuesOptions) => {
    const res = lint(values);
    expect(res.stderr + res.stdout).toContain('0 chart(s) failed');
    expect(res.status).toBe(0);
  });

  it.each([
    ['a top-level typo', { replicaCout: 2 }, "additional properties 'replicaCout' not allowed"],
    ['a nested typo', { 'autoscaling.enabeld': true }, "'enabeld' not allowed"],
    ['an inline client secret', inlineSecret(), "'secret' not allowed"],
    ['a malformed encryption key', { 'encryptionKeys.keys': 'k1:short' }, '/encryptionKeys/keys'],
    ['a caller without key digests', callerWithout(), '/config/callers/0'],
    [
      'a caller with an unknown field',
      callerWith('keySha256Path', '/x'),
      "'keySha256Path' not allowed",
    ],
    ['a relative keySha256File', callerWith('keySha256File', 'callers/a'), 'keySha256File'],
    [
      'a malformed caller digest',
      { 'callerDigests.create': true, 'callerDigests.digests.a[0]': 'abc' },
      '/callerDigests/digests/a/0',
    ],
  ])('fails on %s (values.schema.json)', (_name, set, message) => {
    const res = lint({ set });
    expect(res.status).not.toBe(0);
    expect(res.stderr + res.stdout).toContain(message);
  });
});

function callerWithout() {
  return { 'config.callers[0].name': 'a', 'config.callers[0].clients[0]': '*' };
}

function callerWith(field: string, value: string) {
  return { ...callerWithout(), [`config.callers[0].${field}`]: value };
}

function inlineSecret() {
  return {
    'config.clients[0].clientId': 'a.client',
    'config.clients[0].environment': 'uat',
    'config.clients[0].secret': 'inline',
  };
}

describe.each([
  ['default values', {}],
  ['all-on values', { files: [ALL_ON] }],
])('helm template with %s', (_name, values: ValuesOptions) => {
  const objects = render(values);

  it('renders only complete Kubernetes objects', () => {
    expect(objects.length).toBeGreaterThanOrEqual(5);
    for (const o of objects) {
      expect(o.apiVersion).toMatch(/^[a-z0-9.]+(\/v\w+)?$|^v1$/);
      expect(o.kind).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(o.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('probes liveness on /health/live and readiness on /health/ready', () => {
    const c = container(objects);
    expect(c.ports).toEqual([
      { name: 'http', containerPort: 3000, protocol: 'TCP' },
      { name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
    ]);
    expect(c.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
    expect(c.startupProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
  });

  it('runs locked down', () => {
    const pod = podSpec(objects);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(objects).securityContext).toEqual({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(one(objects, 'ServiceAccount').automountServiceAccountToken).toBe(false);
    // The read-only root needs a writable /tmp.
    const tmp = container(objects).volumeMounts.find((m: Loose) => m.mountPath === '/tmp');
    expect(pod.volumes.find((v: Loose) => v.name === tmp.name).emptyDir).toEqual({
      sizeLimit: '64Mi',
    });
    expect(container(objects).resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '1', memory: '256Mi' },
    });
  });

  it('pauses in preStop and gives the drain time before SIGKILL', () => {
    const seconds = preStopSeconds(objects);
    expect(seconds).toBeGreaterThan(0);
    expect(podSpec(objects).terminationGracePeriodSeconds).toBeGreaterThan(seconds + DRAIN_SECONDS);
  });

  it('mounts the client secrets as a whole folder, with no subPath anywhere', () => {
    expect(findKey(objects, 'subPath')).toEqual([]);
    expect(findKey(objects, 'subPathExpr')).toEqual([]);
    const mount = container(objects).volumeMounts.find(
      (m: Loose) => m.mountPath === CLIENT_SECRETS_DIR,
    );
    expect(mount).toMatchObject({ readOnly: true });
    const volume = podSpec(objects).volumes.find((v: Loose) => v.name === mount.name);
    const secrets = ofKind(objects, 'Secret').map((s) => s.metadata.name);
    expect(secrets).toContain(volume.secret.secretName);
  });

  it('mounts the ConfigMap at TOKEN_VENDOR_CONFIG and annotates its checksum', () => {
    const configMap = serviceConfigMap(objects);
    const volume = podSpec(objects).volumes.find(
      (v: Loose) => v.configMap?.name === configMap.metadata.name,
    );
    const mount = container(objects).volumeMounts.find((m: Loose) => m.name === volume.name);
    expect(envVar(objects, 'TOKEN_VENDOR_CONFIG').value).toBe(`${mount.mountPath}/config.yaml`);
    const annotations = one(objects, 'Deployment').spec.template.metadata.annotations;
    expect(annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('renders a configuration file with no inline secret', () => {
    const config = renderedConfig(objects);
    expect(Object.keys(config)).toEqual(
      expect.arrayContaining(['environments', 'clients', 'callers']),
    );
    expect(findKey(config, 'secret')).toEqual([]);
    expect(findKey(config, 'clientSecret')).toEqual([]);
    for (const client of config.clients) {
      expect(Boolean(client.secretFile) !== Boolean(client.secretEnv)).toBe(true);
    }
  });

  it('exposes port 80 (API) and the metrics port on a ClusterIP Service', () => {
    const service = one(objects, 'Service');
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'metrics', port: METRICS_PORT, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    const podLabels = one(objects, 'Deployment').spec.template.metadata.labels;
    expect(podLabels).toMatchObject(service.spec.selector);
  });
});

describe('default values', () => {
  const objects = render();

  it('render no optional object', () => {
    expect(
      installed(objects)
        .map((o) => o.kind)
        .sort(),
    ).toEqual(['ConfigMap', 'Deployment', 'Secret', 'Service', 'ServiceAccount'].sort());
  });

  it('run one replica on the in-memory store, with no encryption keys', () => {
    expect(one(objects, 'Deployment').spec.replicas).toBe(1);
    expect(envVar(objects, 'REDIS_URL')).toBeUndefined();
    expect(envVar(objects, 'TOKEN_VENDOR_ENCRYPTION_KEYS')).toBeUndefined();
  });

  it('use an exec preStop with sleep', () => {
    expect(container(objects).lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
  });

  it('create an empty client-secrets Secret', () => {
    expect(one(objects, 'Secret').data).toEqual({});
  });

  it('mount no caller-digests folder', () => {
    const mounts = container(objects).volumeMounts.map((m: Loose) => m.mountPath);
    expect(mounts).not.toContain(CALLER_DIGESTS_DIR);
    expect(podSpec(objects).volumes.map((v: Loose) => v.name)).not.toContain('caller-digests');
  });
});

describe('all-on values', () => {
  const objects = render({ files: [ALL_ON] });
  const selector = () => one(objects, 'Deployment').spec.selector.matchLabels;
  const testPodSelector = () => ({
    'app.kubernetes.io/name': 'token-vendor-test',
    'app.kubernetes.io/instance': 'tv',
    'app.kubernetes.io/component': 'helm-test',
  });

  it('render every optional object', () => {
    for (const kind of OPTIONAL_KINDS) expect(ofKind(objects, kind)).toHaveLength(1);
  });

  it('leave replicas to the HPA', () => {
    expect(one(objects, 'Deployment').spec.replicas).toBeUndefined();
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: one(objects, 'Deployment').metadata.name,
    });
    expect(hpa.spec.minReplicas).toBe(2);
  });

  it('keep one pod through voluntary disruptions', () => {
    const pdb = one(objects, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: { matchLabels: selector() } });
  });

  it('take the encryption keys and the Redis URL from Secrets', () => {
    const keysSecret = ofKind(objects, 'Secret').find((s) =>
      s.metadata.name.endsWith('encryption-keys'),
    )!;
    expect(envVar(objects, 'TOKEN_VENDOR_ENCRYPTION_KEYS').valueFrom.secretKeyRef).toEqual({
      name: keysSecret.metadata.name,
      key: 'TOKEN_VENDOR_ENCRYPTION_KEYS',
    });
    expect(envVar(objects, 'REDIS_URL').valueFrom.secretKeyRef).toEqual({
      name: 'token-vendor-redis',
      key: 'redis-url',
    });
    const annotations = one(objects, 'Deployment').spec.template.metadata.annotations;
    expect(annotations['checksum/encryption-keys']).toMatch(/^[0-9a-f]{64}$/);
  });

  it('point every secretFile in the mounted folder at a key of the client-secrets Secret', () => {
    const secret = ofKind(objects, 'Secret').find((s) =>
      s.metadata.name.endsWith('client-secrets'),
    )!;
    const files = renderedConfig(objects)
      .clients.map((c: { secretFile?: string }) => c.secretFile)
      .filter(Boolean);
    expect(files).toHaveLength(6);
    for (const file of files) {
      expect(file.startsWith(`${CLIENT_SECRETS_DIR}/`)).toBe(true);
      expect(Object.keys(secret.data)).toContain(file.slice(CLIENT_SECRETS_DIR.length + 1));
    }
    expect(Buffer.from(secret.data['uat.api-fake-test.client'], 'base64').toString()).toBe(
      'ci-fake-secret-1',
    );
  });

  it('mount the caller digests as a whole folder, with every keySha256File a key of that Secret', () => {
    expect(findKey(objects, 'subPath')).toEqual([]);
    const secret = ofKind(objects, 'Secret').find((s) =>
      s.metadata.name.endsWith('caller-digests'),
    )!;
    const mount = container(objects).volumeMounts.find(
      (m: Loose) => m.mountPath === CALLER_DIGESTS_DIR,
    );
    expect(mount).toEqual({
      name: 'caller-digests',
      mountPath: CALLER_DIGESTS_DIR,
      readOnly: true,
    });
    const volume = podSpec(objects).volumes.find((v: Loose) => v.name === mount.name);
    // Same file mode as the client secrets (0440, owner root, group fsGroup).
    const clientSecrets = podSpec(objects).volumes.find((v: Loose) => v.name === 'client-secrets');
    expect(volume.secret).toEqual({
      secretName: secret.metadata.name,
      defaultMode: clientSecrets.secret.defaultMode,
    });

    const files = renderedConfig(objects)
      .callers.map((c: { keySha256File?: string }) => c.keySha256File)
      .filter(Boolean);
    expect(files).toEqual([`${CALLER_DIGESTS_DIR}/payments-service`]);
    for (const file of files) {
      expect(Object.keys(secret.data)).toContain(file.slice(CALLER_DIGESTS_DIR.length + 1));
    }
    // One digest per line, as the service reads them.
    const content = Buffer.from(secret.data['payments-service'], 'base64').toString();
    expect(content).toMatch(/^([0-9a-f]{64}\n){2}$/);
    // Digests change without a restart: no checksum of them on the pod template.
    const annotations = one(objects, 'Deployment').spec.template.metadata.annotations;
    expect(Object.keys(annotations).filter((k) => k.includes('caller'))).toEqual([]);
  });

  it('use the kubelet sleep action for preStop', () => {
    expect(container(objects).lifecycle.preStop).toEqual({ sleep: { seconds: 5 } });
  });

  it('limit traffic with a NetworkPolicy', () => {
    const np = one(objects, 'NetworkPolicy');
    expect(np.spec.podSelector.matchLabels).toEqual(selector());
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    // Callers and the helm test pod reach the API port only, Prometheus the metrics port only.
    expect(np.spec.ingress).toEqual([
      {
        from: ['deals', 'payments'].map((ns) => ({
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
        })),
        ports: [{ port: 'http', protocol: 'TCP' }],
      },
      {
        from: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        ports: [{ port: 'metrics', protocol: 'TCP' }],
      },
      {
        from: [{ podSelector: { matchLabels: testPodSelector() } }],
        ports: [{ port: 'http', protocol: 'TCP' }],
      },
    ]);
    const testPod = one(objects, 'Pod');
    expect(testPod.metadata.labels).toMatchObject(testPodSelector());
    // The test pod is not one of the service's pods.
    expect(testPod.metadata.labels).not.toMatchObject(selector());

    const egressPorts = (port: number) =>
      np.spec.egress.filter((rule: Loose) => rule.ports.some((p: Loose) => p.port === port));
    const [dns] = egressPorts(53);
    expect(dns.ports).toEqual([
      { port: 53, protocol: 'UDP' },
      { port: 53, protocol: 'TCP' },
    ]);
    expect(dns.to).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } },
    ]);
    const [redis] = egressPorts(6379);
    expect(redis.ports.map((p: Loose) => p.port)).toEqual([6379, 26379]);
    expect(redis.to).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } },
      },
    ]);
    const [idp] = egressPorts(443);
    expect(idp.to).toEqual([
      {
        ipBlock: {
          cidr: '0.0.0.0/0',
          except: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'],
        },
      },
    ]);
    expect(egressPorts(4000)).toHaveLength(1);
  });

  it('let Prometheus scrape /metrics through a ServiceMonitor', () => {
    const sm = one(objects, 'ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels.release).toBe('kube-prometheus-stack');
    expect(one(objects, 'Service').metadata.labels).toMatchObject(sm.spec.selector.matchLabels);
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: ['tokens'] });
    expect(sm.spec.endpoints).toEqual([
      expect.objectContaining({ port: 'metrics', path: '/metrics' }),
    ]);
  });
});

describe('each optional object appears only when enabled', () => {
  const kinds = (set: ValuesOptions['set']) =>
    render({ set })
      .filter((o) => OPTIONAL_KINDS.includes(o.kind))
      .map((o) => o.kind);

  it.each([
    ['autoscaling.enabled', ['HorizontalPodAutoscaler', 'PodDisruptionBudget'], WITH_REDIS],
    ['networkPolicy.enabled', ['NetworkPolicy'], {}],
    ['serviceMonitor.enabled', ['ServiceMonitor'], {}],
    ['prometheusRule.enabled', ['PrometheusRule'], {}],
  ])('%s', (flag, expected, base) => {
    expect(kinds({ ...base, [flag]: true }).sort()).toEqual(expected.sort());
    expect(kinds({ ...base, [flag]: false })).toEqual([]);
  });

  it('podDisruptionBudget.enabled, with more than one replica only', () => {
    const two = { ...WITH_REDIS, replicaCount: 2 };
    expect(kinds({ ...two, 'podDisruptionBudget.enabled': true })).toEqual(['PodDisruptionBudget']);
    expect(kinds({ ...two, 'podDisruptionBudget.enabled': false })).toEqual([]);
    expect(kinds({ ...WITH_REDIS, 'podDisruptionBudget.enabled': true })).toEqual([]);
  });
});

describe('rendering', () => {
  const checksum = (set: ValuesOptions['set']) =>
    one(render({ set }), 'Deployment').spec.template.metadata.annotations['checksum/config'];

  it('rolls the pods on a configuration change, not on a client secret change', () => {
    const base = checksum({});
    expect(checksum({ 'config.refresh.minTtlSeconds': 60 })).not.toBe(base);
    expect(checksum({ 'clientSecrets.secrets.a\\.client': 'rotated' })).toBe(base);
  });

  it('mounts an existing client-secrets Secret instead of creating one', () => {
    const objects = render({ set: { 'clientSecrets.existingSecret': 'from-vault' } });
    expect(ofKind(objects, 'Secret')).toEqual([]);
    const volume = podSpec(objects).volumes.find((v: Loose) => v.secret);
    expect(volume.secret.secretName).toBe('from-vault');
  });

  it('mounts an existing caller-digests Secret instead of creating one', () => {
    const objects = render({
      set: {
        'callerDigests.existingSecret': 'caller-digests-from-vault',
        'callerDigests.create': true,
        'callerDigests.digests.a[0]': 'a'.repeat(64),
      },
    });
    expect(ofKind(objects, 'Secret').map((s) => s.metadata.name)).toEqual([
      'tv-token-vendor-client-secrets',
    ]);
    const mount = container(objects).volumeMounts.find(
      (m: Loose) => m.mountPath === CALLER_DIGESTS_DIR,
    );
    const volume = podSpec(objects).volumes.find((v: Loose) => v.name === mount.name);
    expect(volume.secret.secretName).toBe('caller-digests-from-vault');
    expect(findKey(objects, 'subPath')).toEqual([]);
  });

  it('does not roll the pods on a caller digest change', () => {
    const digests = (d: string) => ({
      'callerDigests.create': true,
      'callerDigests.digests.a[0]': d.repeat(64),
    });
    expect(checksum(digests('a'))).toBe(checksum(digests('b')));
  });

  it('takes the encryption keys from an existing Secret', () => {
    const objects = render({
      set: { 'redis.url': 'redis://r:6379', 'encryptionKeys.existingSecret': 'tv-keys' },
    });
    expect(envVar(objects, 'TOKEN_VENDOR_ENCRYPTION_KEYS').valueFrom.secretKeyRef.name).toBe(
      'tv-keys',
    );
    expect(envVar(objects, 'REDIS_URL').value).toBe('redis://r:6379');
  });

  it('passes Sentinel settings through', () => {
    const objects = render({
      set: {
        ...WITH_REDIS,
        'redis.url': '',
        'redis.sentinels': 'a:26379\\,b:26379',
        'redis.sentinelName': 'mymaster',
      },
    });
    expect(envVar(objects, 'REDIS_SENTINELS').value).toBe('a:26379,b:26379');
    expect(envVar(objects, 'REDIS_SENTINEL_NAME').value).toBe('mymaster');
    expect(envVar(objects, 'REDIS_URL')).toBeUndefined();
  });

  it.each([
    ['several replicas without Redis', { replicaCount: 2 }, 'more than one replica needs Redis'],
    ['autoscaling without Redis', { 'autoscaling.enabled': true }, 'needs Redis'],
    ['Redis without encryption keys', { 'redis.url': 'redis://r:6379' }, 'encryption keys'],
    [
      'a grace period shorter than preStop + drain',
      { terminationGracePeriodSeconds: 15 },
      'must exceed',
    ],
    ['two Redis modes', { ...WITH_REDIS, 'redis.clusterNodes': 'a:1' }, 'set only one'],
    [
      'a keySha256File in the caller-digests folder without that Secret',
      callerWith('keySha256File', `${CALLER_DIGESTS_DIR}/a`),
      'no caller-digests Secret is mounted',
    ],
  ])('refuses %s', (_name, set, message) => {
    expect(() => render({ set })).toThrow(message);
  });
});
