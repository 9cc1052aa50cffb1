// The part of autocannon's API the bench uses (the package ships no types, and the
// @types/autocannon package is not a dependency): a run's options, its result, and the
// thenable instance `autocannon(options)` returns when given no callback.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  namespace autocannon {
    interface Options {
      url: string;
      headers?: Record<string, string>;
      connections?: number;
      pipelining?: number;
      /** Seconds to run; ignored when `amount` is set. */
      duration?: number;
      /** Requests to send in all, instead of a duration. */
      amount?: number;
      warmup?: { connections?: number; duration?: number };
    }

    /** A histogram as autocannon reports it (hdr-histogram-percentiles-obj). */
    interface Histogram {
      average: number;
      mean: number;
      stddev: number;
      min: number;
      max: number;
      p1: number;
      p2_5: number;
      p10: number;
      p25: number;
      p50: number;
      p75: number;
      p90: number;
      p97_5: number;
      p99: number;
      p99_9: number;
    }

    interface Result {
      url: string;
      connections: number;
      pipelining: number;
      duration: number;
      errors: number;
      timeouts: number;
      non2xx: number;
      /** Milliseconds per request. */
      latency: Histogram & { totalCount: number };
      /** Requests per second, sampled each second; `total` answered, `sent` sent. */
      requests: Histogram & { total: number; sent: number };
      /** Bytes per second, sampled each second; `total` bytes read. */
      throughput: Histogram & { total: number };
    }

    interface Instance extends EventEmitter, PromiseLike<Result> {
      stop(): void;
    }
  }

  function autocannon(options: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
