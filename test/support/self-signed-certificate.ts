import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * Self-signed X.509 certificates made in process, with the exact validity a test needs (expiry
 * tests drive a TestClock against `notAfter`) and no openssl: the DER is written here, the
 * signature made by node:crypto. Nothing is committed; every key is made at test time.
 */
export interface SigningCertificate {
  /** The certificate (PEM). */
  cert: string;
  /** Its key, PKCS#8 PEM: what a private_key_jwt client's `privateKeyFile` holds. */
  key: string;
  /** The public key, SPKI PEM. */
  publicKey: string;
}

export interface SigningCertificateOptions {
  /** Default 'rsa' (2048 bits): what Entra ID certificate credentials are. */
  kind?: 'rsa' | 'ec';
  /** Subject and issuer CN. Default 'token-vendor test client'. */
  cn?: string;
  /** Default: an hour ago. */
  notBefore?: Date;
  /** Default: 30 days from now. */
  notAfter?: Date;
  /** Certify this key pair instead of a new one (a second certificate of the same key). */
  keyPair?: { privateKey: KeyObject; publicKey: KeyObject };
}

export function signingCertificate(options: SigningCertificateOptions = {}): SigningCertificate {
  const kind = options.kind ?? 'rsa';
  const pair =
    options.keyPair ??
    (kind === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
  const name = distinguishedName(options.cn ?? 'token-vendor test client');
  const signatureAlgorithm =
    pair.privateKey.asymmetricKeyType === 'rsa'
      ? sequence(oid('1.2.840.113549.1.1.11'), der(0x05, Buffer.alloc(0))) // sha256WithRSAEncryption
      : sequence(oid('1.2.840.10045.4.3.2')); // ecdsa-with-SHA256
  const serial = randomBytes(8);
  serial[0] = (serial[0] & 0x7f) | 0x40; // a positive INTEGER, minimally encoded
  const tbs = sequence(
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, serial),
    signatureAlgorithm,
    name,
    sequence(
      time(options.notBefore ?? new Date(Date.now() - 3_600_000)),
      time(options.notAfter ?? new Date(Date.now() + 30 * 86_400_000)),
    ),
    name,
    pair.publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, pair.privateKey); // ECDSA: DER, as X.509 wants
  const certificate = sequence(
    tbs,
    signatureAlgorithm,
    der(0x03, Buffer.concat([Buffer.from([0]), signature])),
  );
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${base64.trimEnd()}\n-----END CERTIFICATE-----\n`,
    key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

function sequence(...items: Buffer[]): Buffer {
  return der(0x30, Buffer.concat(items));
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const arc of rest) {
    const groups = [arc & 0x7f];
    for (let v = arc >> 7; v > 0; v >>= 7) groups.unshift((v & 0x7f) | 0x80);
    bytes.push(...groups);
  }
  return der(0x06, Buffer.from(bytes));
}

/** `CN=<cn>`: one RDN. */
function distinguishedName(cn: string): Buffer {
  return sequence(der(0x31, sequence(oid('2.5.4.3'), der(0x0c, Buffer.from(cn, 'utf8')))));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime after; whole seconds, UTC. */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]|\.\d+/g, ''); // YYYYMMDDHHMMSSZ
  return date.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(iso.slice(2), 'ascii'))
    : der(0x18, Buffer.from(iso, 'ascii'));
}
