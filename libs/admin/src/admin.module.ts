import { DynamicModule, Module } from '@nestjs/common';
import type { RotationModuleImport } from '@app/rotation';
import type { TokensModuleImport } from '@app/tokens';
import { AdminController } from './admin.controller';
import { AdminAudit } from './admin-audit';
import { AdminGuard } from './admin.guard';
import { AdminService } from './admin.service';

/** /admin, over the app's one TokensModule and RotationModule (their `forRoot` values). */
@Module({})
export class AdminModule {
  static forRoot(tokens: TokensModuleImport, rotation: RotationModuleImport): DynamicModule {
    return {
      module: AdminModule,
      imports: [tokens, rotation],
      controllers: [AdminController],
      providers: [AdminService, AdminGuard, AdminAudit],
    };
  }
}
