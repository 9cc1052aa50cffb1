import { ModulesContainer } from '@nestjs/core';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Redis } from 'ioredis';
import type { Module as NestModule } from '@nestjs/core/injector/module';
import { AdminModule } from '@app/admin';
import { HealthModule } from '@app/health';
import { MetricsService, TelemetryModule } from '@app/observability';
import { ConfigReloader, RotationModule } from '@app/rotation';
import { FLEET_CHANNEL, TOKEN_STORE, TokenStoreModule } from '@app/token-store';
import { REFRESH_ENABLED, RefreshScheduler, TokenSource, TokensModule } from '@app/tokens';
import { TokenVendorModule } from '../../apps/token-vendor/src/token-vendor.module';
import { type InProcessService, startService } from '../support';

/**
 * The wiring the code reads as (README "How the pieces fit"): the root module imports what it uses,
 * each module imports the modules it depends on, and only infrastructure is global. A second
 * instance of a domain module would be a second token cache and scheduler in one process; a
 * second token store module a second Redis client and fleet channel.
 */
describe('module wiring', () => {
  const options = {
    environments: { uat: { tokenUrl: 'http://127.0.0.1:9/connect/token' } },
    clients: [{ clientId: 'a.client', environment: 'uat', secret: 's' }],
    callers: [{ name: 'c', keys: ['k-0000000000000000'], clients: ['*'] }],
  };
  let svc: InProcessService;
  let modules: NestModule[];

  beforeAll(async () => {
    // On Redis, so REDIS_CLIENT is a real client whose identity can be compared.
    svc = await startService({ ...options, scheduler: false, redis: true });
    modules = [...svc.app.get(ModulesContainer).values()];
  });
  afterAll(() => svc.close());

  /** The token store's own provider of the Redis client (not one of the library's doors). */
  const redisClientToken = (): unknown =>
    [...named(TokenStoreModule)[0].providers.keys()].find(
      (k) => typeof k === 'symbol' && k.description === 'REDIS_CLIENT',
    );
  const named = (type: unknown): NestModule[] => modules.filter((m) => m.metatype === type);
  /** The modules that declare a provider for `token` themselves (not through an import). */
  const hostsOf = (token: unknown): string[] =>
    modules.filter((m) => m.providers.has(token as string)).map((m) => m.metatype.name);
  /** A private field of a provider, to compare what was injected into it. */
  const field = (instance: object, name: string): unknown =>
    (instance as Record<string, unknown>)[name];

  it('builds one instance of each domain module, none of them global', () => {
    for (const type of [TokensModule, RotationModule, AdminModule, TokenStoreModule]) {
      const instances = named(type);
      expect([type.name, instances.length]).toEqual([type.name, 1]);
      expect([type.name, instances[0].isGlobal]).toEqual([type.name, false]);
    }
  });

  it('makes only infrastructure global: configuration, the clock, logging, telemetry, the scheduler', () => {
    const global = modules
      .filter((m) => m.isGlobal)
      .map((m) => m.metatype.name)
      .sort();
    expect(global).toEqual([
      'ClockModule',
      'ConfigModule',
      'InternalCoreModule',
      'ObservabilityModule',
      'PeriodicModule',
      'ScheduleModule',
      'TelemetryModule',
    ]);
  });

  it('has the root import tokens and rotation itself, rotation and admin import tokens, and every user of the store import it', () => {
    const importsOf = (type: unknown): unknown[] =>
      [...named(type)[0].imports].map((m) => m.metatype);
    expect(importsOf(TokenVendorModule)).toEqual(
      expect.arrayContaining([TokensModule, RotationModule, AdminModule]),
    );
    expect(importsOf(RotationModule)).toContain(TokensModule);
    expect(importsOf(AdminModule)).toEqual(expect.arrayContaining([TokensModule, RotationModule]));
    for (const user of [TokensModule, RotationModule, HealthModule])
      expect([user.name, importsOf(user)]).toEqual([
        user.name,
        expect.arrayContaining([TokenStoreModule]),
      ]);
  });

  it('has one Redis client, one fleet channel and one metrics registry, shared by every module that uses them', () => {
    expect(redisClientToken()).toBeDefined();
    expect(hostsOf(redisClientToken())).toEqual(['TokenStoreModule']);
    expect(hostsOf(TOKEN_STORE)).toEqual(['TokenStoreModule']);
    expect(hostsOf(FLEET_CHANNEL)).toEqual(['TokenStoreModule']);
    expect(hostsOf(MetricsService)).toEqual([TelemetryModule.name]);

    const redis = svc.app.get<symbol, object>(redisClientToken() as symbol);
    expect(redis).toBeInstanceOf(Redis);
    const store = svc.app.get(TOKEN_STORE);
    expect(field(store, 'redis')).toBe(redis);
    // The store the health check reads and the one the token source writes are the one store;
    // the channel reloads go out on is the one revocations go out on.
    const source = svc.app.get(TokenSource);
    const health = [...named(HealthModule)[0].controllers.values()][0].instance;
    expect(field(health, 'store')).toBe(store);
    expect(field(source, 'store')).toBe(store);
    expect(field(svc.app.get(ConfigReloader), 'fleet')).toBe(field(source, 'fleet'));
    expect(field(source, 'fleet')).toBe(svc.app.get(FLEET_CHANNEL));

    // Every library records into the one registry the /metrics port serves.
    const metrics = svc.app.get(MetricsService);
    expect(field(field(source, 'cache') as object, 'metrics')).toBe(metrics);
    expect(field(svc.app.get(RefreshScheduler), 'metrics')).toBe(metrics);
  });

  /**
   * Background work of one replica, each in @nestjs/schedule's registry (README "How the pieces fit");
   * on the memory store (`defaults` below) there is no clock-skew measurement.
   */
  const BACKGROUND_WITHOUT_REFRESH = [
    'IdP discovery refresh',
    'caller issuer keys check',
    'certificate expiry check',
    'disclosure summaries',
    'secret file poll',
  ];

  it('hands the refresh switch of the app builder to the scheduler (off here, on by default), whose tick is registered with the other background jobs', async () => {
    expect(svc.app.get(REFRESH_ENABLED)).toBe(false);
    expect(field(svc.app.get(RefreshScheduler), 'enabled')).toBe(false);
    // `svc` is on Redis, so the clock-skew measurement runs there too.
    expect(svc.app.get(SchedulerRegistry).getIntervals().sort()).toEqual(
      [...BACKGROUND_WITHOUT_REFRESH, 'clock skew measurement'].sort(),
    );
    const defaults = await startService(options);
    try {
      expect(defaults.app.get(REFRESH_ENABLED)).toBe(true);
      expect(field(defaults.app.get(RefreshScheduler), 'enabled')).toBe(true);
      expect(defaults.app.get(SchedulerRegistry).getIntervals().sort()).toEqual(
        [...BACKGROUND_WITHOUT_REFRESH, 'token refresh'].sort(),
      );
    } finally {
      await defaults.close();
    }
  });
});
