import { ModulesContainer } from '@nestjs/core';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Module as NestModule } from '@nestjs/core/injector/module';
import { AdminModule } from '@app/admin';
import { RotationModule } from '@app/rotation';
import { REFRESH_ENABLED, TokensModule } from '@app/tokens';
import { TokenVendorModule } from '../../apps/token-vendor/src/token-vendor.module';
import { type InProcessService, startService } from '../support';

/**
 * The wiring the code reads as (README "How the pieces fit"): the root module imports what it uses,
 * each module imports the modules it depends on, and only infrastructure is global. A second
 * instance of a domain module would be a second token cache and scheduler in one process.
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
    svc = await startService({ ...options, scheduler: false });
    modules = [...svc.app.get(ModulesContainer).values()];
  });
  afterAll(() => svc.close());

  const named = (type: unknown): NestModule[] => modules.filter((m) => m.metatype === type);

  it('builds one instance of each domain module, none of them global', () => {
    for (const type of [TokensModule, RotationModule, AdminModule]) {
      const instances = named(type);
      expect(instances).toHaveLength(1);
      expect(instances[0].isGlobal).toBe(false);
    }
  });

  it('makes only infrastructure global', () => {
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
      'RefreshSwitchModule',
      'ScheduleModule',
      'TelemetryModule',
      'TokenStoreModule',
    ]);
  });

  it('has the root import tokens and rotation itself, and rotation and admin import tokens', () => {
    const importsOf = (type: unknown): unknown[] =>
      [...named(type)[0].imports].map((m) => m.metatype);
    expect(importsOf(TokenVendorModule)).toEqual(
      expect.arrayContaining([TokensModule, RotationModule, AdminModule]),
    );
    expect(importsOf(RotationModule)).toContain(TokensModule);
    expect(importsOf(AdminModule)).toEqual(expect.arrayContaining([TokensModule, RotationModule]));
  });

  /**
   * Background work of one replica, each in @nestjs/schedule's registry (README "How the pieces fit");
   * the memory store here, so no clock-skew measurement.
   */
  const BACKGROUND_WITHOUT_REFRESH = [
    'IdP discovery refresh',
    'disclosure summaries',
    'secret file poll',
  ];

  it('hands the refresh switch of the app builder to the scheduler (off here, on by default), whose tick is registered with the other background jobs', async () => {
    expect(svc.app.get(REFRESH_ENABLED)).toBe(false);
    expect(svc.app.get(SchedulerRegistry).getIntervals().sort()).toEqual(
      BACKGROUND_WITHOUT_REFRESH,
    );
    const defaults = await startService(options);
    try {
      expect(defaults.app.get(REFRESH_ENABLED)).toBe(true);
      expect(defaults.app.get(SchedulerRegistry).getIntervals().sort()).toEqual(
        [...BACKGROUND_WITHOUT_REFRESH, 'token refresh'].sort(),
      );
    } finally {
      await defaults.close();
    }
  });
});
