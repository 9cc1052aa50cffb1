import { httpRequest, type SimpleResponse, sleep } from '../support';

export function get(url: string, key?: string): Promise<SimpleResponse> {
  return httpRequest(url, { key });
}

export function post(url: string, key?: string): Promise<SimpleResponse> {
  return httpRequest(url, { method: 'POST', key });
}

export interface Failure {
  url: string;
  at: number;
  status: number | string;
  text: string;
}

/**
 * Callers hammering GET /tokens/:clientId: one loop per URL, each at `perSecond` requests a
 * second (sequential, paced). Records every failure, every body and every token handed out, and
 * when each 200 was asked for.
 */
export class CallerLoad {
  /** The URL and sending time of every request answered 200. */
  readonly served: { url: string; at: number }[] = [];
  readonly failures: Failure[] = [];
  readonly bodies: string[] = [];
  readonly tokens = new Set<string>();
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly urls: string[];
  private readonly startedAt = Date.now();
  private stoppedAt: number | undefined;

  constructor(urls: string[], key: string, perSecond = 20) {
    const interval = 1000 / perSecond;
    this.urls = urls;
    this.loops = urls.map((url) => this.loop(url, key, interval));
  }

  private async loop(url: string, key: string, interval: number): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        const res = await get(url, key);
        this.bodies.push(res.text);
        if (res.status === 200) {
          this.served.push({ url, at: started });
          this.tokens.add(res.json().access_token as string);
        } else {
          this.failures.push({ url, at: started, status: res.status, text: res.text });
        }
      } catch (e) {
        this.failures.push({ url, at: started, status: 'network', text: (e as Error).message });
      }
      await sleep(Math.max(0, interval - (Date.now() - started)));
    }
  }

  async stop(): Promise<void> {
    this.stoppedAt ??= Date.now();
    this.running = false;
    await Promise.all(this.loops);
  }

  /**
   * The full 1-s windows of the run (start to stop) in which a URL answered no request sent in
   * it with a 200, as `<url>@+<ms from start>`: "served throughout" without a total count, which
   * would measure this load's own pace (its timer drifts on a busy machine) more than the service.
   */
  secondsWithoutAnswer(): string[] {
    const to = this.stoppedAt ?? Date.now();
    const windows = Array.from(
      { length: Math.floor((to - this.startedAt) / 1000) },
      (_, i) => this.startedAt + i * 1000,
    );
    return this.urls.flatMap((url) =>
      windows
        .filter(
          (from) => !this.served.some((s) => s.url === url && s.at >= from && s.at < from + 1000),
        )
        .map((from) => `${url}@+${from - this.startedAt}ms`),
    );
  }
}
