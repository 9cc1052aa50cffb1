import { createHash } from 'node:crypto';

/** SHA-256 of an access token, lowercase hex: how a token is named between services. */
export function tokenSha256(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'utf8').digest('hex');
}
