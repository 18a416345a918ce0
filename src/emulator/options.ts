/**
 * The emulator's public types: how it is started, the faults it can inject and the
 * counters it keeps so tests and benchmarks can assert what happened on the wire.
 */
import type { ServerRunner } from './server-runner.js';

export interface Account {
  /** The API user (an account UUID on the real service); the Basic-auth username. */
  user: string;
  /** The secret API key; the Basic-auth password. */
  key: string;
}

/** Fault injection; every field is optional and off by default. */
export interface Faults {
  /** Added to every request before its response is sent. */
  latencyMs?: number;
  /** Bandwidth cap of each TCP connection (request bodies in, response bodies out). */
  connectionBytesPerSecond?: number;
  /** One cap shared by all connections, split evenly between the transfers in progress. */
  linkBytesPerSecond?: number;
  /** Share (0..1) of eligible requests answered 500 `system`. */
  errorRate?: number;
  /** Share (0..1) of eligible requests answered 429 with a Retry-After header. */
  throttleRate?: number;
  /** Retry-After value of throttled answers, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Share (0..1) of eligible requests answered 409 `busy`. */
  busyRate?: number;
  /**
   * Share (0..1) of eligible requests whose connection is reset half-way through the body;
   * a raw write keeps (and counts) the part that arrived, as a streaming service would.
   */
  cutRate?: number;
  /** Which requests the error, throttle, busy and cut faults hit (default 'writes'). */
  faultOn?: 'writes' | 'all';
  /** Seed of the fault PRNG, for a repeatable sequence of faults. */
  seed?: number;
}

/**
 * What the real service's recorded answers show (elastichosts-api.md section 9) where the
 * emulator's plain behaviour differs; each off by default, all on with RECORDED_QUIRKS.
 */
export interface Quirks {
  /** Counters (read:bytes, write:requests, ...) as JSON strings, not numbers. */
  stringCounters?: boolean;
  /** Keys with their default or an empty value left out (no claim:type exclusive, no []). */
  omitDefaults?: boolean;
  /** A drive or server that does not exist: 400 `system` "... could not be found", not 404. */
  notFoundAs400?: boolean;
  /** A new drive already shows the service's own 4 KiB write in its counters. */
  serviceWrite?: boolean;
  /** A write while another write to the same drive is in progress: 409 `busy`. */
  oneWriterPerDrive?: boolean;
}

export const QUIRK_NAMES = [
  'stringCounters',
  'omitDefaults',
  'notFoundAs400',
  'serviceWrite',
  'oneWriterPerDrive',
] as const satisfies readonly (keyof Quirks)[];

/** Every recorded quirk on. */
export const RECORDED_QUIRKS: Required<Quirks> = Object.fromEntries(
  QUIRK_NAMES.map((q) => [q, true]),
) as Required<Quirks>;

export interface EmulatorOptions {
  /** Directory holding the drives (created if missing); reused across restarts. */
  dataDir: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: any free port. */
  port?: number;
  accounts: Account[];
  faults?: Faults;
  /** Largest write accepted, in decompressed bytes (default 64 MiB). */
  maxWriteBytes?: number;
  /** fsync each write and metadata file before acknowledging it (default false). */
  fsync?: boolean;
  /** The real service's recorded behaviour, per quirk (default: all off). */
  quirks?: Quirks;
  /** Speed of the image call's server-side copy, source bytes per second (default 256 MiB/s). */
  imagingBytesPerSecond?: number;
  /** Runs started servers (default: none, servers are state only). */
  runner?: ServerRunner;
}

export type FaultKind = 'error' | 'throttle' | 'busy' | 'cut';

/** Counters since start; the same object is updated in place. */
export interface EmulatorStats {
  /** Requests received (every method and path, including refused ones). */
  requests: number;
  /** Requests per endpoint: list, info, create, set, destroy, read, write, unknown. */
  endpoints: Record<string, number>;
  /** Responses sent, by HTTP status. */
  statuses: Record<number, number>;
  /** Faults injected, by kind. */
  faults: Record<FaultKind, number>;
  /** Request body bytes read off the wire (as sent: compressed when gzip). */
  bytesReceived: number;
  /** Response body bytes sent. */
  bytesSent: number;
  /** Decompressed bytes written to drive files. */
  bytesWritten: number;
  /** TCP connections accepted. */
  connections: number;
}

export interface Emulator {
  /** Base URL with a trailing slash, e.g. http://127.0.0.1:40123/. */
  url: string;
  stats: EmulatorStats;
  /** Replaces the faults while running (a new seed restarts the PRNG). */
  setFaults(faults: Faults): void;
  /** Stops accepting, drops open connections, waits for writes and metadata to land. */
  close(): Promise<void>;
}

export const DEFAULT_IMAGING_BYTES_PER_SECOND = 256 * 2 ** 20;
export const DEFAULT_MAX_WRITE_BYTES = 64 * 2 ** 20;
/** The documented read limit: SIZE must be at most 4096 KiB. */
export const MAX_READ_BYTES = 4096 * 1024;
