import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { TokenStoreModule } from '@app/token-store';
import { HealthController } from './health.controller';

@Module({
  // Readiness asks the token store (Redis) and the clock-skew monitor.
  imports: [TerminusModule.forRoot({ logger: false }), TokenStoreModule],
  controllers: [HealthController],
})
export class HealthModule {}
