import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'token-vendor:public';

/** Opts a route out of the global caller guard (health, metrics, docs). */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
