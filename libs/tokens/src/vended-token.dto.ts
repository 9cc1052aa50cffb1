import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { VendedToken } from './vended-token';

/** OpenAPI description of the token answer (README "API"). */
export class VendedTokenDto implements VendedToken {
  @ApiProperty({
    description: 'The access token to send to the API.',
    example: 'eyJhbGciOiJSUzI1NiIs...',
  })
  access_token!: string;

  @ApiProperty({ enum: ['Bearer'], example: 'Bearer' })
  token_type!: 'Bearer';

  @ApiProperty({
    description: 'Whole seconds the token has left; never below minTtl.',
    example: 1187,
  })
  expires_in!: number;

  @ApiProperty({
    description: 'When the token expires (ISO 8601, UTC).',
    example: '2026-11-27T10:20:00.000Z',
  })
  expires_at!: string;

  @ApiPropertyOptional({ description: 'Granted scope, when known.', example: 'deals-read' })
  scope?: string;

  @ApiProperty({ example: 'api-fake-test.client' })
  client_id!: string;

  @ApiProperty({ example: 'uat' })
  environment!: string;
}

/** Body of POST /tokens/:clientId/rejections. */
export class TokenRejectionDto {
  @ApiProperty({
    description: 'SHA-256 of the token the downstream API refused, 64 lowercase hex.',
    example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',
    pattern: '^[0-9a-f]{64}$',
  })
  token_sha256!: string;
}
