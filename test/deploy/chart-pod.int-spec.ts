/**
 * The pod the chart renders: what a platform team adds to it (volumes, env, init
 * containers, labels), Redis credentials and CA, the metrics port, the Kubernetes versions
 * it needs, and what NOTES.txt tells the installer.
 */
import { ALL_ON, installed, K8sObject, Loose, notes, one, render } from './helm';

const PLACEHOLDER_IMAGE = 'ghcr.io/example/token-vendor';
const WITH_REDIS = {
  'redis.url': 'redis://redis:6379',
  'encryptionKeys.create': true,
  'encryptionKeys.keys': 'k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
};

const pod = (objects: K8sObject[]) => one(objects, 'Deployment').spec.template.spec;
const container = (objects: K8sObject[]) => pod(objects).containers[0];
const env = (objects: K8sObject[]) =>
  Object.fromEntries(
    container(objects).env.map((e: Loose) => [e.name, e.value ?? e.valueFrom]),
  ) as Record<string, Loose>;

describe('the pod with the all-on values', () => {
  const objects = render({ files: [ALL_ON] });

  it('adds extraVolumes, extraVolumeMounts, envFrom and initContainers as given', () => {
    expect(pod(objects).volumes).toContainEqual({
      name: 'extra-ca',
      configMap: { name: 'corporate-ca' },
    });
    expect(container(objects).volumeMounts).toContainEqual({
      name: 'extra-ca',
      mountPath: '/etc/ssl/corporate',
      readOnly: true,
    });
    expect(container(objects).envFrom).toEqual([{ configMapRef: { name: 'egress-proxy' } }]);
    expect(pod(objects).initContainers).toEqual([
      { name: 'wait-for-proxy', image: 'busybox:1.36', command: ['sh', '-c', 'true'] },
    ]);
  });

  it('puts podLabels and podAnnotations on the pod, commonLabels on every object, never in selectors', () => {
    const template = one(objects, 'Deployment').spec.template;
    expect(template.metadata.labels).toMatchObject({ 'example.com/tier': 'backend' });
    expect(template.metadata.annotations).toMatchObject({ 'example.com/team': 'platform' });
    for (const o of objects) {
      expect(o.metadata.labels).toMatchObject({ 'example.com/cost-centre': 'platform' });
    }
    const selector = one(objects, 'Deployment').spec.selector.matchLabels;
    expect(Object.keys(selector).sort()).toEqual([
      'app.kubernetes.io/instance',
      'app.kubernetes.io/name',
    ]);
  });

  it('takes the Redis password and user from an existing Secret and mounts the Redis CA', () => {
    const vars = env(objects);
    expect(vars.REDIS_PASSWORD).toEqual({
      secretKeyRef: { name: 'token-vendor-redis-auth', key: 'redis-password' },
    });
    expect(vars.REDIS_USERNAME).toEqual({
      secretKeyRef: { name: 'token-vendor-redis-auth', key: 'redis-user' },
    });
    expect(vars.REDIS_TLS).toBe('true');
    expect(vars.REDIS_TLS_CA_FILE).toBe('/var/run/secrets/token-vendor/redis-ca/ca.crt');
    const mount = container(objects).volumeMounts.find((m: Loose) => m.name === 'redis-ca');
    expect(mount).toEqual({
      name: 'redis-ca',
      mountPath: '/var/run/secrets/token-vendor/redis-ca',
      readOnly: true,
    });
    expect(pod(objects).volumes.find((v: Loose) => v.name === 'redis-ca').secret).toEqual({
      secretName: 'token-vendor-redis-ca',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
      defaultMode: 0o444,
    });
  });
});

describe('the pod with default values', () => {
  const objects = render();

  it('serves /metrics on METRICS_PORT, a port of its own named metrics', () => {
    expect(env(objects).METRICS_PORT).toBe('9464');
    expect(container(objects).ports).toContainEqual({
      name: 'metrics',
      containerPort: 9464,
      protocol: 'TCP',
    });
  });

  it('reports a failed start from the last log lines', () => {
    expect(container(objects).terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('has no Redis credentials, no TLS, no extras', () => {
    const vars = env(objects);
    for (const name of ['REDIS_PASSWORD', 'REDIS_USERNAME', 'REDIS_TLS', 'REDIS_TLS_CA_FILE']) {
      expect(vars[name]).toBeUndefined();
    }
    expect(container(objects).envFrom).toBeUndefined();
    expect(pod(objects).initContainers).toBeUndefined();
  });
});

describe('values that change the pod', () => {
  it('moves the metrics port everywhere it is named', () => {
    const objects = render({ set: { 'metrics.port': 9100 } });
    expect(env(objects).METRICS_PORT).toBe('9100');
    expect(container(objects).ports[1].containerPort).toBe(9100);
    expect(one(objects, 'Service').spec.ports[1]).toEqual({
      name: 'metrics',
      port: 9100,
      targetPort: 'metrics',
      protocol: 'TCP',
    });
  });

  it('passes a Sentinel password from the same Secret', () => {
    const objects = render({
      set: {
        ...WITH_REDIS,
        'redis.url': '',
        'redis.sentinels': 'a:26379',
        'redis.sentinelName': 'm',
        'redis.auth.existingSecret': 'redis-auth',
        'redis.auth.sentinelPasswordKey': 'sentinel-password',
      },
    });
    expect(env(objects).REDIS_SENTINEL_PASSWORD).toEqual({
      secretKeyRef: { name: 'redis-auth', key: 'sentinel-password' },
    });
  });

  it('turns TLS on without a CA (the system CAs)', () => {
    const objects = render({ set: { ...WITH_REDIS, 'redis.tls.enabled': true } });
    expect(env(objects).REDIS_TLS).toBe('true');
    expect(env(objects).REDIS_TLS_CA_FILE).toBeUndefined();
  });

  it('mounts a client certificate Secret as a folder (a renewed certificate reaches the pod) and names both files', () => {
    const objects = render({
      set: { ...WITH_REDIS, 'redis.tls.clientSecret': 'redis-client-tls' },
    });
    const vars = env(objects);
    expect(vars.REDIS_TLS).toBe('true');
    expect(vars.REDIS_TLS_CERT_FILE).toBe('/var/run/secrets/token-vendor/redis-client/tls.crt');
    expect(vars.REDIS_TLS_KEY_FILE).toBe('/var/run/secrets/token-vendor/redis-client/tls.key');
    expect(container(objects).volumeMounts.find((m: Loose) => m.name === 'redis-client')).toEqual({
      name: 'redis-client',
      mountPath: '/var/run/secrets/token-vendor/redis-client',
      readOnly: true,
    });
    expect(pod(objects).volumes.find((v: Loose) => v.name === 'redis-client').secret).toEqual({
      secretName: 'redis-client-tls',
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ],
      defaultMode: 0o440,
    });
    expect(env(render({ set: WITH_REDIS })).REDIS_TLS_CERT_FILE).toBeUndefined();
  });

  it.each([
    [
      'a Sentinel password without Sentinels',
      { ...WITH_REDIS, 'redis.auth.existingSecret': 'a', 'redis.auth.sentinelPasswordKey': 'p' },
      'redis.auth.sentinelPasswordKey needs redis.sentinels',
    ],
    [
      'credentialFiles.create without files',
      { 'credentialFiles.create': true },
      'credentialFiles.create needs credentialFiles.files',
    ],
  ])('refuses %s', (_name, set, message) => {
    expect(() => render({ set })).toThrow(message);
  });
});

describe('Kubernetes versions', () => {
  it('renders on the oldest version Chart.yaml allows (1.27)', () => {
    expect(
      installed(render({ files: [ALL_ON], kubeVersion: '1.30.0', set: {} })).length,
    ).toBeGreaterThan(5);
    expect(installed(render({ kubeVersion: '1.27.0' })).length).toBeGreaterThan(4);
  });

  it('refuses a cluster older than 1.27 (topologySpreadConstraints matchLabelKeys)', () => {
    expect(() => render({ kubeVersion: '1.26.9' })).toThrow('kubeVersion');
  });

  it('refuses the kubelet sleep preStop action before 1.30, naming the value', () => {
    expect(() => render({ files: [ALL_ON], kubeVersion: '1.29.5' })).toThrow(
      'preStop.action sleep needs Kubernetes 1.30 or later (this cluster: v1.29.5)',
    );
  });
});

describe('NOTES.txt', () => {
  it('warns while image.repository is the placeholder', () => {
    const text = notes();
    expect(text).toContain(
      `WARNING: image.repository is still the chart's placeholder (${PLACEHOLDER_IMAGE})`,
    );
  });

  it('does not warn once image.repository is set', () => {
    const text = notes({ set: { 'image.repository': 'registry.example.com/tv' } });
    expect(text).not.toContain('placeholder');
    expect(text).toContain('helm test tv -n tokens');
    expect(text).toContain('port 9464 ("metrics")');
  });
});
