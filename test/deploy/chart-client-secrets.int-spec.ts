/**
 * Client secrets per (environment, client): each client reads its own key of the
 * client-secrets Secret, a client id a Secret key cannot hold is mapped, and a client
 * whose secret is missing fails `helm template` naming it. Key and certificate files
 * in the credential-files folder are checked the same way.
 */
import { parse } from 'yaml';
import { ALL_ON, K8sObject, Loose, one, ofKind, render, serviceConfigMap } from './helm';

const DIR = '/var/run/secrets/token-vendor/clients';
const FILES_DIR = '/var/run/secrets/token-vendor/files';

type Set = Record<string, string | number | boolean>;

/** `--set` pairs for client i. */
function client(i: number, clientId: string, environment: string, extra: Set = {}): Set {
  const fields: Set = {
    [`config.clients[${i}].clientId`]: clientId,
    [`config.clients[${i}].environment`]: environment,
  };
  for (const [k, v] of Object.entries(extra)) fields[`config.clients[${i}].${k}`] = v;
  return fields;
}

/** A `--set` path for a key of clientSecrets.secrets (dots escaped). */
const secret = (key: string) => `clientSecrets.secrets.${key.replace(/\./g, '\\.')}`;

const PROD = { 'config.environments.prod.tokenUrl': 'https://idp.example/token' };

const clients = (objects: K8sObject[]) =>
  parse(serviceConfigMap(objects).data['config.yaml']).clients as Loose[];
const secretData = (objects: K8sObject[]) => one(objects, 'Secret').data as Record<string, string>;
const decoded = (objects: K8sObject[], key: string) =>
  Buffer.from(secretData(objects)[key], 'base64').toString();

describe('client secrets per (environment, client)', () => {
  it('gives one client id its own secret in each environment', () => {
    const objects = render({
      set: {
        ...PROD,
        ...client(0, 'deals.client', 'uat'),
        ...client(1, 'deals.client', 'prod'),
        [secret('uat.deals.client')]: 'uat-fake',
        [secret('prod.deals.client')]: 'prod-fake',
      },
    });
    const [uat, prod] = clients(objects);
    expect(uat.secretFile).toBe(`${DIR}/uat.deals.client`);
    expect(prod.secretFile).toBe(`${DIR}/prod.deals.client`);
    expect(decoded(objects, 'uat.deals.client')).toBe('uat-fake');
    expect(decoded(objects, 'prod.deals.client')).toBe('prod-fake');
  });

  it('maps characters a Secret key cannot hold to "_"', () => {
    const objects = render({
      set: {
        ...client(0, 'svc:reports@example~x+y', 'uat'),
        [secret('uat.svc_reports_example_x_y')]: 'f',
      },
    });
    expect(clients(objects)[0].secretFile).toBe(`${DIR}/uat.svc_reports_example_x_y`);
  });

  it('reads the key named by a client secretKey, and does not render secretKey', () => {
    const objects = render({
      set: {
        ...client(0, 'a.client', 'uat', { secretKey: 'shared-a' }),
        [secret('shared-a')]: 'f',
      },
    });
    expect(clients(objects)[0]).toEqual({
      clientId: 'a.client',
      environment: 'uat',
      secretFile: `${DIR}/shared-a`,
    });
  });

  it('leaves a client with secretEnv or a secretFile elsewhere as given', () => {
    const objects = render({
      set: {
        ...client(0, 'a.client', 'uat', { secretEnv: 'A_SECRET' }),
        ...client(1, 'b.client', 'uat', { secretFile: '/vault/b' }),
      },
    });
    expect(clients(objects).map((c) => [c.secretEnv, c.secretFile])).toEqual([
      ['A_SECRET', undefined],
      [undefined, '/vault/b'],
    ]);
  });

  it.each(['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'])(
    'asks no client secret of a %s client',
    (authMethod) => {
      // The service schema gains these methods in parallel work: checked without it here.
      const objects = render({
        skipSchema: true,
        set: { ...client(0, 'k.client', 'uat', { authMethod }) },
      });
      expect(clients(objects)[0].secretFile).toBeUndefined();
    },
  );

  it('cannot check the keys of an existing Secret, so it only points at them', () => {
    const objects = render({
      set: { 'clientSecrets.existingSecret': 'from-vault', ...client(0, 'a.client', 'uat') },
    });
    expect(clients(objects)[0].secretFile).toBe(`${DIR}/uat.a.client`);
    expect(ofKind(objects, 'Secret')).toEqual([]);
  });

  it('gives every client of the all-on values a distinct key that the Secret holds', () => {
    const objects = render({ files: [ALL_ON] });
    const secrets = ofKind(objects, 'Secret').find((s) =>
      s.metadata.name.endsWith('client-secrets'),
    )!;
    const keys = clients(objects)
      .filter((c) => c.secretFile)
      .map((c) => c.secretFile.slice(DIR.length + 1));
    expect(new Set(keys).size).toBe(keys.length);
    expect(Object.keys(secrets.data).sort()).toEqual([...keys].sort());
  });

  it.each([
    [
      'a client whose key is not in clientSecrets.secrets',
      { ...client(0, 'a.client', 'uat'), [secret('a.client')]: 'old-style key' },
      'config.clients[0] (uat/a.client) has no secret: add clientSecrets.secrets.uat.a.client',
    ],
    [
      'a client with an explicit secretFile in the folder but no such key',
      { ...client(0, 'a.client', 'uat', { secretFile: `${DIR}/typo` }) },
      `config.clients[0] (uat/a.client).secretFile is ${DIR}/typo but tv-token-vendor-client-secrets has no key "typo"`,
    ],
    [
      'a client with no secret and no client-secrets Secret',
      { 'clientSecrets.create': false, ...client(0, 'a.client', 'uat') },
      'config.clients[0] (uat/a.client) has no secret: no secretFile/secretEnv and no client-secrets Secret',
    ],
    [
      'two client ids mapped to one key',
      {
        ...client(0, 'a:b', 'uat'),
        ...client(1, 'a@b', 'uat'),
        [secret('uat.a_b')]: 'f',
      },
      'config.clients[0] (uat/a:b) and config.clients[1] (uat/a@b) both map to the Secret key "uat.a_b": give one a secretKey',
    ],
    [
      'a secretKey beside a secretEnv',
      { ...client(0, 'a.client', 'uat', { secretKey: 'a', secretEnv: 'A_SECRET' }) },
      'config.clients[0] (uat/a.client): secretKey names a key of the client-secrets Secret; it cannot go with secretFile, secretEnv',
    ],
    [
      'a Secret key longer than 253 characters',
      { ...client(0, 'c'.repeat(200), 'e'.repeat(60)) },
      'is longer than 253 characters: set its secretKey',
    ],
  ])('fails helm template on %s, naming it', (_name, set, message) => {
    expect(() => render({ set })).toThrow(message);
  });
});

describe('credential files (keys and certificates the configuration names)', () => {
  // The service schema gains caFile / privateKeyFile / clientCertFile in parallel work; the
  // template's own check is tested without the generated schema.
  const withFiles = (extra: Set) =>
    render({
      skipSchema: true,
      set: {
        'credentialFiles.create': true,
        'credentialFiles.files.idp-ca\\.crt': 'fake-ca',
        'credentialFiles.files.a-key\\.pem': 'fake-key',
        [secret('uat.a.client')]: 'f',
        ...client(0, 'a.client', 'uat'),
        ...extra,
      },
    });

  it('mounts the credential-files Secret as a whole folder, 0440', () => {
    const objects = withFiles({});
    const deployment = one(objects, 'Deployment');
    const pod = deployment.spec.template.spec;
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'credential-files',
      mountPath: FILES_DIR,
      readOnly: true,
    });
    const secretObject = ofKind(objects, 'Secret').find((s) =>
      s.metadata.name.endsWith('credential-files'),
    )!;
    expect(pod.volumes).toContainEqual({
      name: 'credential-files',
      secret: { secretName: secretObject.metadata.name, defaultMode: 0o440 },
    });
    expect(Buffer.from(secretObject.data['idp-ca.crt'], 'base64').toString()).toBe('fake-ca');
  });

  it('accepts files the Secret holds', () => {
    const objects = withFiles({
      'config.environments.uat.caFile': `${FILES_DIR}/idp-ca.crt`,
      'config.clients[0].privateKeyFile': `${FILES_DIR}/a-key.pem`,
    });
    expect(clients(objects)[0].privateKeyFile).toBe(`${FILES_DIR}/a-key.pem`);
  });

  it.each([
    [
      'caFile',
      { 'config.environments.uat.caFile': `${FILES_DIR}/missing.crt` },
      'config.environments.uat.caFile',
    ],
    [
      'privateKeyFile',
      { 'config.clients[0].privateKeyFile': `${FILES_DIR}/b.pem` },
      'config.clients[0] (uat/a.client).privateKeyFile',
    ],
    [
      'certificateFile',
      { 'config.clients[0].certificateFile': `${FILES_DIR}/a-cert.pem` },
      'config.clients[0] (uat/a.client).certificateFile',
    ],
    [
      'clientCertFile',
      { 'config.clients[0].clientCertFile': `${FILES_DIR}/c.crt` },
      'config.clients[0] (uat/a.client).clientCertFile',
    ],
    [
      'clientKeyFile',
      { 'config.clients[0].clientKeyFile': `${FILES_DIR}/c.key` },
      'config.clients[0] (uat/a.client).clientKeyFile',
    ],
  ])('fails on a %s the Secret does not hold, naming the field', (_name, set, field) => {
    expect(() => withFiles(set)).toThrow(`${field} is ${Object.values(set)[0]} but`);
  });

  it('fails on a file in the folder when no credential-files Secret is mounted', () => {
    expect(() =>
      render({
        skipSchema: true,
        set: { 'config.environments.uat.caFile': `${FILES_DIR}/ca.crt` },
      }),
    ).toThrow(
      `config.environments.uat.caFile is ${FILES_DIR}/ca.crt, in ${FILES_DIR}, but no Secret is mounted there`,
    );
  });

  it('mounts no credential-files folder by default', () => {
    const pod = one(render(), 'Deployment').spec.template.spec;
    expect(pod.volumes.map((v: Loose) => v.name)).not.toContain('credential-files');
  });
});
