import { Module } from '@nestjs/common';
import { RotationModule } from '@app/rotation';
import { TokensModule } from '@app/tokens';
import { AdminController } from './admin.controller';
import { AdminAudit } from './admin-audit';
import { AdminGuard } from './admin.guard';
import { AdminService } from './admin.service';

@Module({
  imports: [TokensModule, RotationModule],
  controllers: [AdminController],
  providers: [AdminService, AdminGuard, AdminAudit],
})
export class AdminModule {}
