import { DynamicModule, Module } from '@nestjs/common';
import { TokenStoreModule } from '@app/token-store';
import { UpstreamModule } from '@app/upstream';
import type { TokensModuleImport } from '@app/tokens';
import { CertificateExpiryMonitor } from './certificate-expiry.monitor';
import { ConfigReloader } from './config-reloader';
import { SecretFileWatcher } from './secret-file.watcher';
import { SecretRotationService } from './secret-rotation.service';

export type RotationModuleImport = DynamicModule & { module: typeof RotationModule };

/**
 * Secret rotation, configuration reload and the expiry watch of the certificates in use.
 * `tokens` is the app's one TokensModule (its `forRoot` value): rotation fills its secret
 * candidates and asks its token source.
 */
@Module({})
export class RotationModule {
  static forRoot(tokens: TokensModuleImport): RotationModuleImport {
    return {
      module: RotationModule,
      // The fleet channel carries reloads to every replica; a reload is checked against the
      // IdPs already discovered.
      imports: [tokens, TokenStoreModule, UpstreamModule],
      providers: [
        SecretRotationService,
        SecretFileWatcher,
        ConfigReloader,
        CertificateExpiryMonitor,
      ],
      exports: [SecretRotationService, ConfigReloader, SecretFileWatcher],
    };
  }
}
