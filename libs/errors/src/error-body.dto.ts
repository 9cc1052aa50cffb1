import { ApiProperty } from '@nestjs/swagger';
import type { ErrorBody } from './error-body';
import { ERROR_CODES, type ErrorCode } from './error-codes';

/** Every error answer of the API: `{"error": "<code>", "message": "<text>"}`. */
export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({ example: 'unknown_client', enum: ERROR_CODES })
  error!: ErrorCode;

  @ApiProperty({ example: 'No such client is available to this caller.' })
  message!: string;
}
