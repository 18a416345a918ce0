/**
 * Bandwidth caps. The shared link is split evenly between the transfers in progress
 * (request bodies being read, response bodies being written), and no transfer gets
 * more than the per-connection cap: the max-min fair share that TCP flows through one
 * bottleneck settle at. (A first-come queue on the link instead let some connections
 * run at their cap while others starved, and the starved ones then finished alone,
 * leaving the link half idle: no real network behaves like that.)
 *
 * Each connection paces itself at its current share on a virtual time line (GCRA, a
 * token bucket with no saved-up burst): booking n bytes moves its "free at" time on by
 * n / rate, and the bytes may pass once that time has come. Timers fire late by a
 * millisecond or so; a line that was busy until just now keeps its "free at" time in
 * the past (up to SLACK_MS) so that lateness is made up on the next booking instead of
 * being lost on every chunk. A line idle for longer starts afresh, so no burst is saved
 * up between requests.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const SLACK_MS = 25;

export interface Caps {
  /** Bytes per second of the link all connections share. */
  link?: number | undefined;
  /** Bytes per second of each connection. */
  connection?: number | undefined;
}

/** The fair share of one transfer among `transfers` in progress; undefined: no cap. */
export function fairShare(caps: Caps, transfers: number): number | undefined {
  const limits = [
    caps.link !== undefined && caps.link > 0 ? caps.link / Math.max(1, transfers) : undefined,
    caps.connection !== undefined && caps.connection > 0 ? caps.connection : undefined,
  ].filter((r): r is number => r !== undefined);
  return limits.length === 0 ? undefined : Math.min(...limits);
}

export class Pacer {
  private freeAt = 0;

  /** `rate` is read on every booking: caps and shares change while running. */
  constructor(private readonly rate: () => number | undefined) {}

  /** Waits until `bytes` booked now have passed this line. */
  async pass(bytes: number): Promise<void> {
    const now = performance.now();
    const rate = this.rate();
    if (rate === undefined) return;
    if (this.freeAt < now - SLACK_MS) this.freeAt = now;
    this.freeAt += (bytes / rate) * 1000;
    const wait = this.freeAt - now;
    if (wait > 0.5) await sleep(wait);
  }

  /** Slices a response body is written in: about 5 ms of the line, 1 to 64 KiB. */
  sliceSize(): number {
    const rate = this.rate();
    if (rate === undefined) return Infinity;
    return Math.min(65536, Math.max(1024, Math.floor(rate / 200)));
  }
}

/** The shared link: counts the transfers in progress and hands each connection its pacer. */
export class Link {
  private transfers = 0;
  /** Each connection's own pacer (its own cap), kept while the connection lives. */
  private readonly pacers = new WeakMap<object, Pacer>();

  /** `caps` is read on every booking, so caps can change while running. */
  constructor(private readonly caps: () => Caps) {}

  /** A connection's pacer: its bytes go at the fair share of the moment. */
  pacer(): Pacer {
    return new Pacer(() => fairShare(this.caps(), this.transfers));
  }

  /** The pacer of a connection (e.g. a request's socket), made on its first request. */
  pacerFor(connection: object): Pacer {
    let pacer = this.pacers.get(connection);
    if (!pacer) {
      pacer = this.pacer();
      this.pacers.set(connection, pacer);
    }
    return pacer;
  }

  /** Runs `transfer` counted as in progress. */
  async carry<T>(transfer: () => Promise<T>): Promise<T> {
    this.transfers++;
    try {
      return await transfer();
    } finally {
      this.transfers--;
    }
  }
}
