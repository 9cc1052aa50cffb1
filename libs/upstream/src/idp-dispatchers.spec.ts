import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import { fetch, type Dispatcher } from 'undici';
import { createTestPki, type TestPki } from '../../../test/support/test-pki';
import { IdpDispatchers } from './idp-dispatchers';

/**
 * The IdP calls' pools against a real https server whose certificate a private CA signed: a
 * caFile replaced on disk is trusted from the next call after the re-check, without a restart.
 */
describe('IdpDispatchers: a caFile replaced on disk', () => {
  let pki: TestPki;
  let otherPki: TestPki;
  let server: Server;
  let url: string;
  let caFile: string;
  let warned: unknown[];

  beforeAll(async () => {
    pki = createTestPki();
    otherPki = createTestPki();
    server = createServer({ key: pki.serverKey, cert: pki.serverCert }, (_req, res) => {
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    pki.dispose();
    otherPki.dispose();
  });
  beforeEach(() => {
    caFile = join(otherPki.dir, `bundle-${Math.random().toString(36).slice(2)}.pem`);
    warned = [];
    jest.spyOn(Logger.prototype, 'warn').mockImplementation((line: unknown) => {
      warned.push(line);
    });
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  /** Replaced the way an operator or the kubelet does: written beside it, renamed over it. */
  const replace = (content: string): void => {
    writeFileSync(`${caFile}.new`, content);
    renameSync(`${caFile}.new`, caFile);
  };
  const call = (dispatcher: Dispatcher): Promise<string> =>
    fetch(url, { dispatcher }).then(
      (r) => r.text(),
      (e: Error & { cause?: { code?: string } }) => `failed: ${e.cause?.code ?? e.message}`,
    );

  it('trusts the new bundle from the first call after the re-check, and closes the old pool', async () => {
    writeFileSync(caFile, readFileSync(otherPki.caFile)); // another CA: the server is not trusted
    const sut = new IdpDispatchers(0);
    const before = sut.for({ caFile });
    expect(await call(before)).toBe('failed: UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(sut.for({ caFile })).toBe(before); // unchanged file: the same pool

    replace(readFileSync(pki.caFile, 'utf8'));
    const after = sut.for({ caFile });

    expect(after).not.toBe(before);
    expect(await call(after)).toBe('ok');
    // The old pool was closed once its requests were done (closed, then destroyed).
    expect(['failed: UND_ERR_CLOSED', 'failed: UND_ERR_DESTROYED']).toContain(await call(before));
    expect(sut.for({ caFile })).toBe(after);
    await sut.close();
  });

  it('keeps the last bundle while the file holds no certificate, is cut off, or is missing', async () => {
    const pem = readFileSync(pki.caFile, 'utf8');
    writeFileSync(caFile, pem);
    const sut = new IdpDispatchers(0);
    const trusted = sut.for({ caFile });
    expect(await call(trusted)).toBe('ok');

    replace('half-written\n');
    expect(sut.for({ caFile })).toBe(trusted);
    // Two CAs, the second cut off mid-write: not trusted in part.
    replace(`${readFileSync(otherPki.caFile, 'utf8')}${pem.slice(0, pem.length / 2)}`);
    expect(sut.for({ caFile })).toBe(trusted);
    expect(warned).toEqual([
      {
        msg: 'caFile cannot be used; the previous bundle stays',
        path: caFile,
        reason: `${caFile} holds no PEM certificate`,
      },
      {
        msg: 'caFile cannot be used; the previous bundle stays',
        path: caFile,
        reason: `${caFile}: certificate 2 of 2 cannot be parsed (cut off or damaged)`,
      },
    ]);
    renameSync(caFile, `${caFile}.gone`);
    expect(sut.for({ caFile })).toBe(trusted);
    expect(await call(trusted)).toBe('ok');
    await sut.close();
  });

  it('looks at the file again only after the re-check interval', async () => {
    writeFileSync(caFile, readFileSync(otherPki.caFile));
    const sut = new IdpDispatchers(60_000);
    const first = sut.for({ caFile });

    replace(readFileSync(pki.caFile, 'utf8'));

    expect(sut.for({ caFile })).toBe(first);
    await sut.close();
  });
});
