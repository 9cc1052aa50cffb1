import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorResult,
  HealthIndicatorService,
} from '@nestjs/terminus';
import { Public } from '@app/auth';
import { ConfigService } from '@app/config';
import { IdpReachability } from '@app/observability';
import { ClockSkewMonitor, TOKEN_STORE, type TokenStore } from '@app/token-store';

/**
 * Liveness: the process answers (nothing else). Readiness: configuration and keys are loaded,
 * so this replica can serve. Redis and the IdPs are reported but never fail readiness: they are
 * shared by every replica, so failing on them would take the whole fleet out at once — while
 * each replica can still serve the tokens it holds (and, without Redis, fetch directly).
 */
@ApiTags('operations')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly config: ConfigService,
    @Inject(TOKEN_STORE) private readonly store: TokenStore,
    private readonly clockSkew: ClockSkewMonitor,
    private readonly idps: IdpReachability,
  ) {}

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process answers' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: 'Readiness: configuration and keys loaded; names each dependency and its state',
  })
  ready(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.configuration(),
      () => this.tokenStore(),
      () => this.clock(),
      () => this.identityProviders(),
    ]);
  }

  /**
   * Each environment's IdP as the token requests last found it: shown, never failed on (an IdP
   * is shared by every replica; the tokens held keep being served while it is down).
   */
  private identityProviders(): HealthIndicatorResult {
    const environments = Object.fromEntries(
      [...this.config.service.environments.keys()].map((name) => [name, this.idps.stateOf(name)]),
    );
    return this.indicator.check('identityProviders').up({ environments });
  }

  private configuration(): HealthIndicatorResult {
    const service = this.config.service;
    return this.indicator.check('configuration').up({
      environments: service.environments.size,
      clients: service.clients.length,
      callers: service.callers.length,
    });
  }

  /**
   * This replica's wall clock against Redis's: shown, never failed on (token lifetimes do not
   * depend on it; README "Which clock decides what").
   */
  private async clock(): Promise<HealthIndicatorResult> {
    const report = await this.clockSkew.measure();
    return this.indicator.check('clock').up({ ...report });
  }

  private async tokenStore(): Promise<HealthIndicatorResult> {
    const check = this.indicator.check('tokenStore');
    try {
      await this.store.ping();
      return check.up({ kind: this.store.kind, state: 'up' });
    } catch {
      // Reported, not failed: see the class comment.
      return check.up({ kind: this.store.kind, state: 'down' });
    }
  }
}
