import type { ClientConfig } from '@app/config';

/**
 * The rotation seam: a newer secret that was seen on disk but not yet accepted by the IdP.
 * When the secret in use is refused while a candidate exists, the fetcher tries the
 * candidate; if the IdP accepts it, it is adopted. Implemented by @app/rotation, which
 * registers itself with TokenFetcher.useSecretCandidates.
 */
export interface SecretCandidates {
  candidateFor(client: ClientConfig): string | undefined;
  /** The IdP accepted the candidate: make it the secret in use. */
  adopt(client: ClientConfig, secret: string): void;
}
