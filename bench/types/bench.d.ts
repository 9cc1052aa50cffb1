// What bench/run.js hands every phase (bench/phases/*.js): the settings read from the
// environment (bench/README.md lists the variables), the shared context and the log.
import type { RunningRedis } from '../lib/services';

export interface BenchSettings {
  connections: number;
  warmupSec: number;
  durationSec: number;
  rounds: number;
  burstCallers: number;
  replicas: number;
  /** The client counts the scale phase runs, one replica each. */
  scale: number[];
  waveTimeoutSec: number;
  sdkSimSeconds: number;
  invalidations: number;
  /** The phases to run (hot, cold, scale, sdk, invalidation). */
  phases: string[];
  /** Node's flags for the hot path's vendor process; no variable sets it (for experiments). */
  vendorNodeArgs?: string[];
}

/** The throwaway redis-server and working folder of the whole run. */
export interface PhaseContext {
  work: string;
  redis: RunningRedis;
}

export type Log = (line: string) => void;
