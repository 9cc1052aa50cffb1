import { DynamicModule, Global, Module } from '@nestjs/common';
import { readClientSecrets } from './client-secrets.reader';
import { ConfigService, type ConfigSnapshot } from './config.service';
import type { RuntimeSettings } from './config.types';
import { loadRuntimeSettings } from './runtime-settings.loader';
import { loadServiceConfigFile } from './service-config.loader';

export interface LoadedConfiguration {
  runtime: RuntimeSettings;
  snapshot: ConfigSnapshot;
}

/** Loads everything the service needs before Nest starts; throws one ConfigError on any problem. */
export function loadConfiguration(
  env: NodeJS.ProcessEnv,
  defaults: { configPath?: string } = {},
): LoadedConfiguration {
  const runtime = loadRuntimeSettings(env, defaults);
  return { runtime, snapshot: loadSnapshot(runtime.configPath, env) };
}

/** Configuration file + secrets; used at start and again on reload. */
export function loadSnapshot(configPath: string, env: NodeJS.ProcessEnv): ConfigSnapshot {
  const service = loadServiceConfigFile(configPath);
  return { service, secrets: readClientSecrets(service.clients, env, configPath) };
}

@Global()
@Module({})
export class ConfigModule {
  /** Configuration is validated before the module is built, so a bad file never half-starts. */
  static forRoot(loaded: LoadedConfiguration): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: ConfigService, useValue: new ConfigService(loaded.runtime, loaded.snapshot) },
      ],
      exports: [ConfigService],
    };
  }
}
