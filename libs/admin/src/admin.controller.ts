import { Controller, Get, HttpCode, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiOkResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { ErrorBodyDto } from '@app/errors';
import { AdminClientsDto, AdminRefreshDto, AdminReloadDto } from './admin.dto';
import { AdminAudit, type AdminRequest } from './admin-audit';
import { AdminGuard } from './admin.guard';
import { AdminService } from './admin.service';

@ApiTags('admin')
@ApiBearerAuth('caller-key')
@ApiResponse({ status: 401, type: ErrorBodyDto, description: 'unauthorized' })
@ApiResponse({
  status: 403,
  type: ErrorBodyDto,
  description: 'forbidden: the caller is not an admin',
})
@UseGuards(AdminGuard)
@Controller('admin')
export class AdminController {
  constructor(
    private readonly admin: AdminService,
    private readonly audit: AdminAudit,
  ) {}

  @Get('clients')
  @ApiOperation({
    summary:
      'Per client and environment: token, refresh and secret state (never a secret or token)',
  })
  @ApiOkResponse({ type: AdminClientsDto })
  clients(@Req() request: AdminRequest): Promise<AdminClientsDto> {
    return this.audit.run(request, 'list-clients', undefined, () => this.admin.clients());
  }

  @Post('clients/:clientId/refresh')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Revoke the current token on every replica and fetch one new token for the fleet',
  })
  @ApiQuery({ name: 'environment', required: false })
  @ApiOkResponse({ type: AdminRefreshDto })
  @ApiResponse({ status: 400, type: ErrorBodyDto })
  @ApiResponse({ status: 502, type: ErrorBodyDto })
  @ApiResponse({ status: 503, type: ErrorBodyDto })
  refresh(
    @Req() request: AdminRequest,
    @Param('clientId') clientId: string,
    @Query('environment') environment?: string,
  ): Promise<AdminRefreshDto> {
    const target = environment === undefined ? clientId : `${environment}/${clientId}`;
    return this.audit.run(request, 'refresh', target, () =>
      this.admin.refresh(clientId, environment),
    );
  }

  @Post('reload')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'Reload configuration and secrets on every replica, each from its own files (SIGHUP does the same)',
  })
  @ApiOkResponse({ type: AdminReloadDto })
  @ApiResponse({
    status: 400,
    type: ErrorBodyDto,
    description: 'invalid configuration: refused, the running one stays',
  })
  reload(@Req() request: AdminRequest): Promise<AdminReloadDto> {
    return this.audit.run(request, 'reload', undefined, () => this.admin.reload());
  }
}
