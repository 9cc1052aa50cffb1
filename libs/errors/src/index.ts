export * from './domain-errors';
export { DomainExceptionFilter } from './domain-exception.filter';
export { ErrorBodyDto } from './error-body.dto';
export { errorBody } from './error-body';
export { ERROR_CODES, type ErrorCode } from './error-codes';
