import { ApiProperty } from '@nestjs/swagger';
import type { ErrorBody } from './error-body';

/** Every error answer of the API: `{"error": "<code>", "message": "<text>"}`. */
export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({
    example: 'unknown_client',
    enum: [
      'invalid_request',
      'unauthorized',
      'forbidden',
      'unknown_client',
      'not_found',
      'too_many_requests',
      'upstream_rejected',
      'upstream_unavailable',
      'internal_error',
    ],
  })
  error!: string;

  @ApiProperty({ example: 'No such client is available to this caller.' })
  message!: string;
}
