import { X509Certificate, createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { ClientRegistry } from './client-registry';
import { SandboxInputError } from './sandbox-input-error';
import { signingCertificate } from '../../../test/support/self-signed-certificate';

const TOKEN_URL = 'http://127.0.0.1:4000/connect/token';
const DAY = 24 * 60 * 60_000;

const thumbprint = (pem: string, hash: 'sha256' | 'sha1'): string =>
  createHash(hash).update(new X509Certificate(pem).raw).digest('base64url');

/** A client assertion as an Entra ID client makes it, with the header the test gives. */
function assertion(key: string, header: Record<string, unknown>, clientId = 'entra.client') {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'PS256', typ: 'JWT', ...header })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(TOKEN_URL)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(createPrivateKey(key));
}

/** private_key_jwt with certificate credentials, found by thumbprint (README "POST /connect/token"). */
describe('ClientRegistry: assertions naming a certificate (x5t#S256 / x5t)', () => {
  const registered = signingCertificate();
  const other = signingCertificate();
  const s256 = thumbprint(registered.cert, 'sha256');
  const sha1 = thumbprint(registered.cert, 'sha1');
  let sut: ClientRegistry;
  beforeEach(() => {
    sut = new ClientRegistry([
      { clientId: 'entra.client', assertionCertificates: [registered.cert] },
    ]);
  });
  const verify = async (jwt: Promise<string>) =>
    (await sut.authenticateAssertion('entra.client', await jwt, [TOKEN_URL]))?.client.clientId;

  it.each<[string, Record<string, unknown>]>([
    ['x5t#S256 and x5t', { 'x5t#S256': s256, x5t: sha1 }],
    ['x5t#S256 alone (current Entra ID)', { 'x5t#S256': s256 }],
    ['x5t alone (older Entra ID tenants)', { x5t: sha1 }],
  ])('accepts %s of a registered certificate, signed by its key', async (_what, header) => {
    await expect(verify(assertion(registered.key, header))).resolves.toBe('entra.client');
  });

  it.each<[string, () => Record<string, unknown>, string]>([
    ['an unknown x5t#S256', () => ({ 'x5t#S256': thumbprint(other.cert, 'sha256') }), 'other'],
    ['an unknown x5t', () => ({ x5t: thumbprint(other.cert, 'sha1') }), 'other'],
    [
      'x5t#S256 and x5t of two different certificates',
      () => ({ 'x5t#S256': s256, x5t: thumbprint(other.cert, 'sha1') }),
      'registered',
    ],
    ['a registered thumbprint signed by another key', () => ({ 'x5t#S256': s256 }), 'other'],
    ['no thumbprint (and no public keys registered)', () => ({}), 'registered'],
    ['a thumbprint that is not a string', () => ({ 'x5t#S256': 42 }), 'registered'],
  ])('refuses %s (invalid_client)', async (_what, header, signer) => {
    const key = signer === 'registered' ? registered.key : other.key;
    await expect(verify(assertion(key, header()))).resolves.toBeUndefined();
  });

  it('refuses a registered certificate outside its validity period', async () => {
    const expired = signingCertificate({
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    sut.setAssertionCertificates('entra.client', [expired.cert]);

    await expect(
      verify(assertion(expired.key, { 'x5t#S256': thumbprint(expired.cert, 'sha256') })),
    ).resolves.toBeUndefined();
  });

  it('rotates certificate credentials: the old one stops at once, the new one works', async () => {
    sut.setAssertionCertificates('entra.client', [other.cert]);

    await expect(verify(assertion(registered.key, { 'x5t#S256': s256 }))).resolves.toBeUndefined();
    await expect(
      verify(assertion(other.key, { 'x5t#S256': thumbprint(other.cert, 'sha256') })),
    ).resolves.toBe('entra.client');
  });

  it('keeps verifying kid-only assertions against the public keys beside the certificates', async () => {
    const keyed = signingCertificate();
    sut.setPublicKeys('entra.client', [keyed.publicKey]);

    await expect(verify(assertion(keyed.key, { kid: 'k1' }))).resolves.toBe('entra.client');
    await expect(verify(assertion(registered.key, { 'x5t#S256': s256 }))).resolves.toBe(
      'entra.client',
    );
    // A header naming a certificate is verified with that certificate alone, never the keys.
    await expect(verify(assertion(keyed.key, { 'x5t#S256': s256 }))).resolves.toBeUndefined();
  });

  it('refuses a client whose assertionCertificates are not certificates', () => {
    expect(
      () => new ClientRegistry([{ clientId: 'c', assertionCertificates: ['not a certificate'] }]),
    ).toThrow(
      new SandboxInputError(
        'clients[0].assertionCertificates must be a non-empty array of PEM certificates',
      ),
    );
  });
});
