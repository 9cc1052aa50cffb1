import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { CallerAuthGuard } from './caller-auth.guard';
import { CallerIssuerKeysCheck } from './caller-issuer-keys.check';
import { CallerRegistry } from './caller-registry';
import { CallerBearerStrategy } from './caller-bearer.strategy';
import { FailedAuthLimiter } from './failed-auth.limiter';
import { WorkloadCallerAuthenticator } from './workload-caller.authenticator';

@Module({
  providers: [
    CallerRegistry,
    CallerBearerStrategy,
    WorkloadCallerAuthenticator,
    CallerIssuerKeysCheck,
    FailedAuthLimiter,
    CallerAuthGuard,
    { provide: APP_GUARD, useExisting: CallerAuthGuard },
  ],
  exports: [CallerRegistry, FailedAuthLimiter],
})
export class AuthModule {}
