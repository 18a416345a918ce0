/**
 * Bandwidth caps as pacers on a virtual time line (GCRA, a token bucket with no saved-up
 * burst): booking n bytes moves the line's "free at" time on by n / rate, and the bytes
 * may pass once every line they cross (the connection's, the shared link's) is free.
 * Booking on both lines at once, rather than one after the other, makes the slower cap
 * win instead of the two adding up.
 *
 * Timers fire late by a millisecond or so; a line that was busy until just now keeps its
 * "free at" time in the past (up to SLACK_MS) so that lateness is made up on the next
 * booking instead of being lost on every chunk. A line idle for longer starts afresh, so
 * no burst is saved up between requests.
 */
import { setTimeout as sleep } from 'node:timers/promises';

const SLACK_MS = 25;

export class Pacer {
  private freeAt = 0;

  /** `rate` is read on every booking, so caps can change while running. */
  constructor(private readonly rate: () => number | undefined) {}

  /** Books n bytes; returns when (performance.now() ms) they have passed this line. */
  book(bytes: number): number {
    const now = performance.now();
    const rate = this.rate();
    if (rate === undefined || rate <= 0) return now;
    if (this.freeAt < now - SLACK_MS) this.freeAt = now;
    this.freeAt += (bytes / rate) * 1000;
    return this.freeAt;
  }
}

/** Waits until `bytes` have passed every pacer. */
export async function pace(pacers: readonly Pacer[], bytes: number): Promise<void> {
  let until = 0;
  for (const p of pacers) until = Math.max(until, p.book(bytes));
  const wait = until - performance.now();
  if (wait > 0.5) await sleep(wait);
}

/** Slices a response body is written in when paced: small enough to be smooth. */
export function sliceSize(pacers: readonly Pacer[], rates: (number | undefined)[]): number {
  const active = rates.filter((r): r is number => r !== undefined && r > 0);
  if (pacers.length === 0 || active.length === 0) return Infinity;
  // About 5 ms of the slowest line, between 1 KiB and 64 KiB.
  return Math.min(65536, Math.max(1024, Math.floor(Math.min(...active) / 200)));
}
