import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { CallerAuthGuard } from './caller-auth.guard';
import { CallerRegistry } from './caller-registry';
import { CallerStrategy } from './caller.strategy';
import { FailedAuthLimiter } from './failed-auth.limiter';

@Module({
  imports: [PassportModule.register({ session: false })],
  providers: [
    CallerRegistry,
    CallerStrategy,
    FailedAuthLimiter,
    CallerAuthGuard,
    { provide: APP_GUARD, useExisting: CallerAuthGuard },
  ],
  exports: [CallerRegistry, FailedAuthLimiter],
})
export class AuthModule {}
