import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { CallerRegistry, type Caller } from './caller-registry';

export const CALLER_STRATEGY = 'caller-bearer';

/** passport-http-bearer: takes the key from `Authorization: Bearer <key>` and finds its caller. */
@Injectable()
export class CallerStrategy extends PassportStrategy(Strategy, CALLER_STRATEGY) {
  constructor(private readonly registry: CallerRegistry) {
    super();
  }

  validate(key: string): Caller | false {
    return this.registry.authenticate(key) ?? false;
  }
}
