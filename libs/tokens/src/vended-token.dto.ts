import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { VendedToken } from './vended-token';

/** OpenAPI description of the token answer (contract §6). */
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
