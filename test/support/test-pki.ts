import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private CA and a server certificate it signed, made for one test run (nothing committed). */
export interface TestPki {
  /** Folder of the PEM files; removed by dispose(). */
  dir: string;
  /** Path of the CA certificate (what an environment's caFile names). */
  caFile: string;
  /** PEM of the server certificate (for 127.0.0.1 and localhost) and its key. */
  serverCert: string;
  serverKey: string;
  /** Paths of a client certificate (extendedKeyUsage clientAuth) the CA signed, and its key. */
  clientCertFile: string;
  clientKeyFile: string;
  dispose(): void;
}

/** Runs openssl (the machine's; no key material is ever committed). */
function openssl(cwd: string, args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A throwaway CA (P-256), a 127.0.0.1 / localhost server certificate and a client certificate signed by it. */
export function createTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'token-vendor-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, [
    'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=token-vendor test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  /** `<name>.pem` and `<name>.key`: a certificate the CA signed, with the given extensions. */
  const issue = (name: string, subject: string, extensions: string): void => {
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(dir, [
      'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`,
    ]); // prettier-ignore
  };
  issue(
    'server',
    '/CN=127.0.0.1',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
  );
  issue('client', '/CN=token-vendor', 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
    serverCert: readFileSync(join(dir, 'server.pem'), 'utf8'),
    serverKey: readFileSync(join(dir, 'server.key'), 'utf8'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A client certificate and its key (PEM), and the files holding them. */
export interface TestClientCertificate {
  cert: string;
  key: string;
}

/** A tls_client_auth certificate for `CN=<cn>`, issued by the test CA. */
export function issueClientCertificate(pki: TestPki, cn: string): TestClientCertificate {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const name = `client-${cn.replace(/[^A-Za-z0-9.-]/g, '_')}-${Date.now()}`;
  openssl(pki.dir, [
    'req',
    ...ec,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  ]);
  writeFileSync(
    join(pki.dir, `${name}.ext`),
    'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n',
  );
  openssl(pki.dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`,
  ]); // prettier-ignore
  return {
    cert: readFileSync(join(pki.dir, `${name}.pem`), 'utf8'),
    key: readFileSync(join(pki.dir, `${name}.key`), 'utf8'),
  };
}

/** A self_signed_tls_client_auth certificate for `CN=<cn>`, made in `dir`. */
export function selfSignedClientCertificate(dir: string, cn: string): TestClientCertificate {
  const name = `self-${cn.replace(/[^A-Za-z0-9.-]/g, '_')}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`,
  ]); // prettier-ignore
  return {
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

/** A client's key pair for private_key_jwt, made at test time: the private key as PKCS#8 PEM. */
export function clientKeyPair(kind: 'rsa' | 'ec' = 'rsa'): {
  privatePem: string;
  publicPem: string;
} {
  const pair =
    kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}
