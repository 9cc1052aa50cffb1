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
 * second (sequential, paced). Records every failure, every body and every token handed out.
 */
export class CallerLoad {
  ok = 0;
  readonly failures: Failure[] = [];
  readonly bodies: string[] = [];
  readonly tokens = new Set<string>();
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(urls: string[], key: string, perSecond = 20) {
    const interval = 1000 / perSecond;
    this.loops = urls.map((url) => this.loop(url, key, interval));
  }

  private async loop(url: string, key: string, interval: number): Promise<void> {
    while (this.running) {
      const started = Date.now();
      try {
        const res = await get(url, key);
        this.bodies.push(res.text);
        if (res.status === 200) {
          this.ok++;
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
    this.running = false;
    await Promise.all(this.loops);
  }
}
