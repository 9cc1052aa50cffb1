import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Cluster, type Redis } from 'ioredis';
import type { PeriodicTask, PeriodicTasks } from '@app/periodic';

/** How often a replica sends itself a heartbeat through the fleet channel. */
export const FLEET_HEARTBEAT_INTERVAL_MS = 150;
/**
 * The channel counts as confirmed while this replica's own heartbeat came back within this
 * long: a longer gap (a pause, a lost connection, a stalled path) means messages may have been
 * lost, and copies checked before the gap are checked again before they are served.
 */
export const FLEET_CONFIRM_WINDOW_MS = 600;
/** A replica heard from within this long is counted as a member of the fleet. */
export const FLEET_MEMBER_TTL_MS = 2_000;

/** What replicas tell each other. `from` is the sender's replica id. */
export type FleetMessage =
  | { type: 'heartbeat'; from: string }
  /**
   * A token was revoked (admin refresh, downstream rejection): drop copies of it. Its remaining
   * life when sent, not an expiry: no clock reading of one process means anything in another.
   */
  | { type: 'revoked'; from: string; id: string; client: string; sha: string; expiresInMs: number }
  /** Reload configuration and secrets (each replica reads its own files). */
  | { type: 'reload'; from: string; id: string }
  /** A replica's answer to a request (`id`): what it did. */
  | { type: 'ack'; from: string; id: string; outcome: string; detail?: string };

export const FLEET_CHANNEL = Symbol('FLEET_CHANNEL');
/** How long a request waits for the other replicas' answers. */
export const FLEET_ACK_TIMEOUT_MS = 1_000;

/** A message another replica answers; the answer says what it did. */
export type FleetRequest = Extract<FleetMessage, { type: 'revoked' | 'reload' }>;
export type FleetRequestBody = FleetRequest extends infer M
  ? M extends FleetRequest
    ? Omit<M, 'from' | 'id'>
    : never
  : never;

/** One replica's answer to a request. */
export interface FleetAck {
  replica: string;
  outcome: string;
  detail?: string;
}

/**
 * The fleet's broadcast: pub/sub through Redis (plain PUBLISH/SUBSCRIBE works on standalone,
 * Sentinel and Cluster alike). Pub/sub loses messages while a replica is paused or cut off,
 * so the channel also says whether it has been confirmed alive without a gap since a given
 * moment (measured on the monotonic clock, so a paused process sees the gap when it resumes).
 */
export interface FleetChannel {
  readonly replicaId: string;
  /** Monotonic milliseconds (Clock.monotonic). */
  monotonicNow(): number;
  /** Whether every message sent since `since` (monotonic ms) has reached this replica. */
  confirmedSince(since: number): boolean;
  /**
   * Sends a request to every other replica and resolves with their answers: once every replica
   * heard from lately has answered, or after FLEET_ACK_TIMEOUT_MS.
   */
  request(body: FleetRequestBody): Promise<FleetAck[]>;
  /** Answers other replicas' requests of a type (own requests are not delivered). */
  onRequest<T extends FleetRequest['type']>(
    type: T,
    handler: (message: Extract<FleetRequest, { type: T }>) => Promise<Omit<FleetAck, 'replica'>>,
  ): void;
  /** Replicas heard within FLEET_MEMBER_TTL_MS, this one included. */
  members(): string[];
  close(): Promise<void>;
}

/** The request/answer logic shared by both channels; subclasses only move bytes. */
abstract class RequestingFleetChannel {
  readonly replicaId = replicaIdentity();
  protected readonly baseLogger = new Logger('FleetChannel');
  private readonly handlers = new Map<
    string,
    (message: FleetRequest) => Promise<Omit<FleetAck, 'replica'>>
  >();
  private readonly waiting = new Map<string, (ack: FleetAck) => void>();

  abstract members(): string[];
  protected abstract send(message: FleetMessage): Promise<void>;

  async request(body: FleetRequestBody): Promise<FleetAck[]> {
    const id = randomUUID();
    const expected = new Set(this.members().filter((m) => m !== this.replicaId));
    const acks: FleetAck[] = [];
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const timer = setTimeout(finish, FLEET_ACK_TIMEOUT_MS);
    timer.unref();
    this.waiting.set(id, (ack) => {
      acks.push(ack);
      expected.delete(ack.replica);
      if (expected.size === 0) finish();
    });
    try {
      await this.send({ ...body, id, from: this.replicaId });
      if (expected.size > 0) await done;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id);
    }
    return acks.sort((a, b) => a.replica.localeCompare(b.replica));
  }

  onRequest<T extends FleetRequest['type']>(
    type: T,
    handler: (message: Extract<FleetRequest, { type: T }>) => Promise<Omit<FleetAck, 'replica'>>,
  ): void {
    this.handlers.set(type, handler as (m: FleetRequest) => Promise<Omit<FleetAck, 'replica'>>);
  }

  /** Delivers one message of another replica (or an answer to one of ours). */
  protected deliver(message: FleetMessage): void {
    if (message.type === 'ack') {
      this.waiting.get(message.id)?.({
        replica: message.from,
        outcome: message.outcome,
        ...(message.detail === undefined ? {} : { detail: message.detail }),
      });
      return;
    }
    if (message.type === 'heartbeat' || message.from === this.replicaId) return;
    const handler = this.handlers.get(message.type);
    if (!handler) return;
    const id = message.id;
    handler(message)
      .catch((e: unknown) => ({ outcome: 'failed', detail: (e as Error).message }))
      .then((answer) => this.send({ type: 'ack', from: this.replicaId, id, ...answer }))
      .catch((e: unknown) =>
        this.baseLogger.warn({ err: { message: (e as Error).message } }, 'fleet answer failed'),
      );
  }
}

/** One replica without Redis: every message reaches the whole "fleet" (itself) at once. */
export class LocalFleetChannel extends RequestingFleetChannel implements FleetChannel {
  constructor(private readonly clock: () => number = () => performance.now()) {
    super();
  }

  monotonicNow(): number {
    return this.clock();
  }

  /** Always: nothing can be lost on the way from this replica to itself. */
  confirmedSince(_since?: number): boolean {
    return true;
  }

  protected send(message: FleetMessage): Promise<void> {
    this.deliver(message);
    return Promise.resolve();
  }

  members(): string[] {
    return [this.replicaId];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export class RedisFleetChannel extends RequestingFleetChannel implements FleetChannel {
  private readonly logger = new Logger('FleetChannel');
  private readonly subscriber: Redis | Cluster;
  private readonly heard = new Map<string, number>();
  private readonly heartbeat: PeriodicTask;
  /** When our own heartbeat last came back (monotonic), and since when without a gap. */
  private lastConfirmed = Number.NEGATIVE_INFINITY;
  private confirmedFrom = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly publisher: Redis | Cluster,
    private readonly channel: string,
    tasks: PeriodicTasks,
    private readonly clock: () => number = () => performance.now(),
  ) {
    super();
    // In-flight requests rely on a confirmed channel while they drain: it beats until close().
    this.heartbeat = tasks.createThroughDrain('fleet heartbeat', FLEET_HEARTBEAT_INTERVAL_MS, () =>
      this.beat(),
    );
    // A subscriber queues its SUBSCRIBE until connected; ioredis re-subscribes on reconnect.
    this.subscriber =
      publisher instanceof Cluster
        ? publisher.duplicate(undefined, { enableOfflineQueue: true })
        : publisher.duplicate({ enableOfflineQueue: true });
    this.subscriber.on('error', () => undefined); // the command client logs outages
    this.subscriber.on('close', () => this.lost());
    this.subscriber.on('message', (_channel: string, text: string) => this.receive(text));
    this.subscriber.subscribe(channel).catch((e: Error) => {
      this.logger.warn({ err: { message: e.message } }, 'fleet channel: subscribe failed');
    });
    this.heartbeat.start();
    this.beat();
  }

  monotonicNow(): number {
    return this.clock();
  }

  confirmedSince(since: number): boolean {
    const now = this.clock();
    return now - this.lastConfirmed <= FLEET_CONFIRM_WINDOW_MS && since >= this.confirmedFrom;
  }

  protected async send(message: FleetMessage): Promise<void> {
    await this.publisher.publish(this.channel, JSON.stringify(message));
  }

  members(): string[] {
    const now = this.clock();
    const alive = [...this.heard].filter(([, at]) => now - at <= FLEET_MEMBER_TTL_MS);
    const ids = new Set([this.replicaId, ...alive.map(([id]) => id)]);
    return [...ids].sort();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.heartbeat.stop();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  private beat(): void {
    if (this.closed) return;
    this.send({ type: 'heartbeat', from: this.replicaId }).catch(() => undefined);
  }

  private lost(): void {
    this.lastConfirmed = Number.NEGATIVE_INFINITY;
    this.confirmedFrom = Number.POSITIVE_INFINITY;
  }

  private receive(text: string): void {
    let message: FleetMessage;
    try {
      message = JSON.parse(text) as FleetMessage;
    } catch {
      return;
    }
    if (typeof message !== 'object' || message === null || typeof message.from !== 'string') {
      return;
    }
    const now = this.clock();
    this.heard.set(message.from, now);
    if (message.type === 'heartbeat') {
      if (message.from !== this.replicaId) return;
      // A gap since the last confirmation: messages may have been lost in it.
      if (now - this.lastConfirmed > FLEET_CONFIRM_WINDOW_MS) this.confirmedFrom = now;
      this.lastConfirmed = now;
      return;
    }
    this.deliver(message);
  }
}

/** Host name and a random part: unique per process, readable in operator answers. */
function replicaIdentity(): string {
  return `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
}
