import { Module } from '@nestjs/common';
import { ConfigReloader } from './config-reloader';
import { SecretFileWatcher } from './secret-file.watcher';
import { SecretRotationService } from './secret-rotation.service';

/** Secret rotation and configuration reload. */
@Module({
  providers: [SecretRotationService, SecretFileWatcher, ConfigReloader],
  exports: [SecretRotationService, ConfigReloader, SecretFileWatcher],
})
export class RotationModule {}
