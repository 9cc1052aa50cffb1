import { Module } from '@nestjs/common';
import { TokensModule } from '@app/tokens';
import { ConfigReloader } from './config-reloader';
import { SecretFileWatcher } from './secret-file.watcher';
import { SecretRotationService } from './secret-rotation.service';

/** Secret rotation and configuration reload. */
@Module({
  imports: [TokensModule],
  providers: [SecretRotationService, SecretFileWatcher, ConfigReloader],
  exports: [SecretRotationService, ConfigReloader, SecretFileWatcher],
})
export class RotationModule {}
