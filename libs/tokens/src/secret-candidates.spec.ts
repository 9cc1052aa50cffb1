import { Logger } from '@nestjs/common';

import {
  ConfigService,
  parseServiceConfig,
  type ClientConfig,
  type RuntimeSettings,
} from '@app/config';
import { SecretCandidates, type Candidate } from './secret-candidates';
import { TestClock } from '../../../test/support/clock';

const CONFIG_YAML = `
environments:
  uat:
    tokenUrl: https://idp.example.test/connect/token
clients:
  - clientId: a.client
    environment: uat
    secretEnv: A_SECRET
  - clientId: b.client
    environment: uat
    secretEnv: B_SECRET
`;
const RUNTIME: RuntimeSettings = {
  port: 0,
  host: '127.0.0.1',
  configPath: 'test.yaml',
  keyPrefix: 'test:',
  encryptionKeys: [],
  logLevel: 'silent',
  metricsPort: 0,
  trustedProxies: [],
};

describe('SecretCandidates', () => {
  let clock: TestClock;
  let config: ConfigService;
  let a: ClientConfig;
  let b: ClientConfig;
  let sut: SecretCandidates;

  const candidate = (secret: string): Candidate => ({
    secret,
    digest: `digest-of-${secret}`,
    seenAt: clock.now(),
    attempts: 1,
    nextTryAt: clock.now(),
  });

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    clock = new TestClock();
    const service = parseServiceConfig(CONFIG_YAML, 'test.yaml');
    [a, b] = service.clients;
    config = new ConfigService(RUNTIME, {
      service,
      secrets: new Map([
        [a.key, 'a-old'],
        [b.key, 'b-old'],
      ]),
    });
    sut = new SecretCandidates(config, clock);
  });

  afterEach(() => jest.restoreAllMocks());

  it('adopting a candidate makes it the secret in use and records when', async () => {
    sut.propose(a.key, candidate('a-new'));
    expect(sut.candidateFor(a)).toBe('a-new');

    await clock.advance(1_000);
    sut.adopt(a, 'a-new');

    expect(config.secretFor(a.key)).toBe('a-new');
    expect(sut.candidateFor(a)).toBeUndefined();
    expect(sut.historyOf(a.key)).toEqual({ lastRotationAt: clock.now() });
    expect(config.secretFor(b.key)).toBe('b-old');
  });

  it('a refused candidate stays pending with its error; the secret in use stays', () => {
    sut.adopt(a, 'a-first');
    const rotatedAt = clock.now();
    const pending = candidate('a-second');
    sut.propose(a.key, pending);
    const error = { code: 'upstream_rejected', message: 'refused', at: clock.now() };

    sut.refused(a, pending, error);

    expect(config.secretFor(a.key)).toBe('a-first');
    expect(sut.pending(a.key)).toMatchObject({ secret: 'a-second', lastError: error });
    expect(sut.historyOf(a.key)).toEqual({ lastRotationAt: rotatedAt, lastRotationError: error });
  });

  it('forgets the candidates and history of clients a reload removed', () => {
    sut.propose(a.key, candidate('a-new'));
    sut.adopt(b, 'b-new');

    sut.retain(new Set([b.key]));

    expect(sut.pending(a.key)).toBeUndefined();
    expect(sut.historyOf(a.key)).toBeUndefined();
    expect(sut.historyOf(b.key)).toEqual({ lastRotationAt: clock.now() });
  });

  it('withdraws a candidate when the secret on disk is again the one in use', () => {
    sut.propose(b.key, candidate('b-new'));

    sut.withdraw(b.key);

    expect(sut.candidateFor(b)).toBeUndefined();
  });
});
