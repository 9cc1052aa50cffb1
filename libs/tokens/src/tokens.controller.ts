import { Controller, Get, HttpCode, Post, Req } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Caller } from '@app/auth';
import { ErrorBodyDto } from '@app/errors';
import { TokenRejectionService } from './token-rejection.service';
import { TokenVendingService } from './token-vending.service';
import { TokenRejectionDto, VendedTokenDto } from './vended-token.dto';

/** What the handler reads: the guard's caller, the route, the query, the id, the source address. */
interface TokenRequest {
  user: Caller;
  params: { clientId: string };
  query: Record<string, unknown>;
  id: string;
  ip: string;
  body?: unknown;
}

@ApiTags('tokens')
@ApiBearerAuth('caller-key')
@Controller('tokens')
export class TokensController {
  constructor(
    private readonly vending: TokenVendingService,
    private readonly rejections: TokenRejectionService,
  ) {}

  @Get(':clientId')
  @ApiOperation({ summary: 'A valid access token of the client, for an authenticated caller' })
  @ApiParam({ name: 'clientId', example: 'api-fake-test.client' })
  @ApiQuery({
    name: 'environment',
    required: false,
    description: 'Needed when the client id exists in several environments the caller may use.',
  })
  @ApiQuery({
    name: 'minTtl',
    required: false,
    description: 'Seconds the token must have left (default refresh.minTtlSeconds).',
  })
  @ApiOkResponse({ type: VendedTokenDto })
  @ApiResponse({
    status: 400,
    type: ErrorBodyDto,
    description:
      'invalid_request: malformed client id, bad minTtl, unknown or ambiguous environment',
  })
  @ApiResponse({
    status: 401,
    type: ErrorBodyDto,
    description:
      'unauthorized: missing or unknown caller key; or a refused workload JWT (expired, badly ' +
      'signed, wrong audience or issuer, no caller names it), with ' +
      '`WWW-Authenticate: Bearer realm="token-vendor", error="invalid_token"`',
  })
  @ApiResponse({
    status: 404,
    type: ErrorBodyDto,
    description: 'unknown_client: no such client, or not allowed to this caller',
  })
  @ApiResponse({
    status: 429,
    type: ErrorBodyDto,
    description: 'too_many_requests: too many failed authentications from this source',
  })
  @ApiResponse({
    status: 502,
    type: ErrorBodyDto,
    description:
      'upstream_rejected: the IdP refused our credentials (secret, signed client assertion or ' +
      'client certificate) or scope',
  })
  @ApiResponse({
    status: 503,
    type: ErrorBodyDto,
    description:
      'upstream_unavailable: the IdP is unreachable (including not yet discovered from its ' +
      'issuer, or its TLS certificate is not trusted) or answers garbage, and no valid token is ' +
      "held; or (JWT callers only) the caller token issuer's keys cannot be fetched and none are " +
      'cached. shutting_down: this replica is draining after SIGTERM; retry',
  })
  // One @Req() parameter rather than four parameter decorators (caller, client id, query,
  // request id): Nest extracts each decorator's value per request, and this handler answers
  // almost every request; one parameter saves ~3 KB of garbage per request (bench/alloc.js).
  getToken(@Req() request: TokenRequest): Promise<VendedTokenDto> {
    return this.vending.vend(
      request.user,
      request.params.clientId,
      request.query,
      request.id,
      request.ip,
    );
  }

  @Post(':clientId/rejections')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Report that a downstream API refused a token; answers a token to use instead',
    description:
      'If the named token is the one served now, it is revoked on every replica and one new ' +
      'token is fetched for the whole fleet (at most once per client per ' +
      '`refresh.minRejectionIntervalSeconds`; past that the current token is answered). ' +
      'An older token gets the current one without an IdP request.',
  })
  @ApiParam({ name: 'clientId', example: 'api-fake-test.client' })
  @ApiQuery({
    name: 'environment',
    required: false,
    description: 'Needed when the client id exists in several environments the caller may use.',
  })
  @ApiBody({ type: TokenRejectionDto })
  @ApiOkResponse({ type: VendedTokenDto, description: 'The token to use now (GET /tokens shape).' })
  @ApiResponse({
    status: 400,
    type: ErrorBodyDto,
    description: 'invalid_request: malformed body or client id, unknown or ambiguous environment',
  })
  @ApiResponse({ status: 401, type: ErrorBodyDto, description: 'unauthorized' })
  @ApiResponse({
    status: 404,
    type: ErrorBodyDto,
    description: 'unknown_client: no such client, or not allowed to this caller',
  })
  @ApiResponse({ status: 502, type: ErrorBodyDto, description: 'upstream_rejected' })
  @ApiResponse({
    status: 503,
    type: ErrorBodyDto,
    description: 'upstream_unavailable; or shutting_down: this replica is draining, retry',
  })
  reportRejection(@Req() request: TokenRequest): Promise<VendedTokenDto> {
    return this.rejections.report(
      request.user,
      request.params.clientId,
      request.query,
      request.body,
      request.id,
    );
  }
}
