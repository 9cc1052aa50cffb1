import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { MetricsService } from '@app/observability';
import type { ClientConfig } from '@app/config';
import { TOKEN_STORE, type StoredToken, type TokenStore } from '@app/token-store';

/**
 * Two layers: this replica's own copy of each token (no round trip, and what keeps callers
 * served while Redis is down) in front of the shared store. Store failures never propagate:
 * they read as a miss and are logged once per outage, not once per request.
 */
@Injectable()
export class TokenCache {
  private readonly logger = new Logger(TokenCache.name);
  private readonly own = new Map<string, StoredToken>();
  private storeDown = false;
  private readonly listeners: ((client: ClientConfig, token: StoredToken) => void)[] = [];

  constructor(
    @Inject(TOKEN_STORE) private readonly store: TokenStore,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    metrics?.observeHeldTokens(() => this.heldSamples());
  }

  private *heldSamples(): Iterable<{ clientId: string; environment: string; expiresAt: number }> {
    for (const [key, token] of this.own) {
      const slash = key.indexOf('/');
      yield {
        environment: key.slice(0, slash),
        clientId: key.slice(slash + 1),
        expiresAt: token.expiresAt,
      };
    }
  }

  /** Whether the last store operation succeeded. */
  get storeAvailable(): boolean {
    return !this.storeDown;
  }

  /** Called whenever this replica adopts a token that expires later than the one it held. */
  onAdopt(listener: (client: ClientConfig, token: StoredToken) => void): void {
    this.listeners.push(listener);
  }

  /** This replica's copy, if it has one. */
  local(client: ClientConfig): StoredToken | undefined {
    return this.own.get(client.key);
  }

  /** The shared store's token; adopted as this replica's copy when it expires later. */
  async shared(client: ClientConfig): Promise<StoredToken | undefined> {
    try {
      const token = await this.store.get(client);
      this.storeRecovered();
      if (token) this.keepLocal(client, token);
      return token;
    } catch (e) {
      this.storeFailed('read', e);
      return undefined;
    }
  }

  /** Keeps the token locally and offers it to the shared store (which keeps the later one). */
  async save(client: ClientConfig, token: StoredToken): Promise<void> {
    this.keepLocal(client, token);
    try {
      await this.store.put(client, token);
      this.storeRecovered();
    } catch (e) {
      this.storeFailed('write', e);
    }
  }

  /** Drops this replica's copy (the client was removed). */
  forget(client: ClientConfig): void {
    this.own.delete(client.key);
  }

  /** Drops the token everywhere (the client's scope or IdP changed: the token no longer fits). */
  async discard(client: ClientConfig): Promise<void> {
    this.own.delete(client.key);
    try {
      await this.store.delete(client);
    } catch (e) {
      this.storeFailed('write', e);
    }
  }

  private keepLocal(client: ClientConfig, token: StoredToken): void {
    const current = this.own.get(client.key);
    if (current && current.expiresAt >= token.expiresAt) return;
    this.own.set(client.key, token);
    for (const listener of this.listeners) listener(client, token);
  }

  private storeFailed(operation: 'read' | 'write', e: unknown): void {
    this.metrics?.storeErrors.inc({ operation });
    if (this.storeDown) return;
    this.storeDown = true;
    this.logger.warn(
      { operation, err: { message: (e as Error).message } },
      'token store unavailable; serving from this replica',
    );
  }

  private storeRecovered(): void {
    if (!this.storeDown) return;
    this.storeDown = false;
    this.logger.log('token store available again');
  }
}
