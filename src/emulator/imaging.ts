/**
 * The image call: a server-side copy of one drive onto another, as is, gzipped or
 * gunzipped. Copies run one at a time in the order asked for (the others show `imaging
 * queued`); each takes time in proportion to the source's size (`bytesPerSecond`) and
 * claims both drives until it is done, so nothing writes to, images onto or destroys
 * either meanwhile. The destination is emptied first; all-zero pieces are skipped, so a
 * big destination stays sparse. A gzip stream followed by the zeros of a larger source
 * drive ends where the stream ends.
 */
import { createReadStream } from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { EmulatorApiError } from './api-error.js';
import type { DriveStore } from './drive-store.js';
import type { Conversion } from './routes.js';

interface Job {
  user: string;
  dest: string;
  source: string;
  conversion: Conversion;
  /** Source bytes read so far, of `total`. */
  done: number;
  total: number;
  running: boolean;
}

const PIECE = 1 << 20;

export class Imaging {
  private readonly jobs: Job[] = [];
  private readonly stopping = new AbortController();
  private worker: Promise<void> = Promise.resolve();

  constructor(
    private readonly drives: DriveStore,
    private readonly bytesPerSecond: number,
  ) {}

  private jobOf(drive: string): Job | undefined {
    return this.jobs.find((j) => j.dest === drive || j.source === drive);
  }

  /** True while a copy to or from the drive is queued or running. */
  busy(drive: string): boolean {
    return this.jobOf(drive) !== undefined;
  }

  /** The destination's `imaging` value: queued, true, or with `full` a percentage. */
  state(drive: string, full: boolean): string | undefined {
    const job = this.jobs.find((j) => j.dest === drive);
    if (!job) return undefined;
    if (!job.running) return 'queued';
    return full ? `${Math.floor((100 * job.done) / Math.max(job.total, 1))}%` : 'true';
  }

  /** The claims a copy holds on a drive (both of its drives). */
  claimsOf(drive: string): string[] {
    const job = this.jobOf(drive);
    return job ? [`${job.user}:imaging:${job.dest}`] : [];
  }

  /** Queues a copy of `source` onto `dest`; the caller checked the servers' claims. */
  image(user: string, dest: string, source: string, conversion: Conversion): void {
    const to = this.drives.get(user, dest);
    const from = this.drives.get(user, source);
    if (to.drive === from.drive) {
      throw new EmulatorApiError('usage', `Cannot image drive ${to.drive} onto itself`);
    }
    for (const d of [to, from]) {
      if (this.busy(d.drive)) {
        throw new EmulatorApiError(
          'busy',
          `Drive ${d.drive} is being imaged: wait until it is done`,
        );
      }
    }
    if (conversion === 'none' && from.size > to.size) {
      throw new EmulatorApiError(
        'usage',
        `Cannot image drive ${from.drive} (${from.size} bytes) onto drive ${to.drive} (${to.size} bytes): it does not fit`,
      );
    }
    this.jobs.push({
      user,
      dest: to.drive,
      source: from.drive,
      conversion,
      done: 0,
      total: from.size,
      running: false,
    });
    this.worker = this.worker.then(() => this.runNext());
  }

  private async runNext(): Promise<void> {
    const job = this.jobs[0];
    if (!job || this.stopping.signal.aborted) return;
    job.running = true;
    try {
      await this.copy(job);
    } catch {
      // A copy cut short (a bad gzip stream, shutdown) leaves what it wrote.
    } finally {
      this.jobs.shift();
    }
  }

  private async copy(job: Job): Promise<void> {
    const dest = this.drives.get(job.user, job.dest);
    const destFile = this.drives.dataFile(job.dest);
    await truncate(destFile, 0);
    await truncate(destFile, dest.size);
    const started = Date.now();
    const signal = this.stopping.signal;
    const rate = this.bytesPerSecond;
    const paced = async function* (source: AsyncIterable<Buffer>) {
      for await (const piece of source) {
        job.done += piece.length;
        const due = started + (job.done / rate) * 1000;
        if (due > Date.now()) await sleep(due - Date.now(), undefined, { signal });
        yield piece;
      }
    };
    const handle = await open(destFile, 'r+');
    let at = 0;
    const sink = async (source: AsyncIterable<Buffer>) => {
      for await (const piece of source) {
        const room = Math.max(0, Math.min(piece.length, dest.size - at));
        const part = piece.subarray(0, room);
        if (part.some((b) => b !== 0)) await handle.write(part, 0, part.length, at);
        at += piece.length;
      }
    };
    const read = createReadStream(this.drives.dataFile(job.source), {
      highWaterMark: PIECE,
      end: job.total - 1,
    });
    try {
      if (job.conversion === 'none') {
        await pipeline(read, paced, sink, { signal });
        return;
      }
      const converter = job.conversion === 'gzip' ? createGzip() : createGunzip();
      await pipeline(read, paced, converter, sink, { signal }).catch((error: unknown) => {
        // gunzip ends with the gzip stream; the rest of the source drive is padding.
        const ended = (error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE';
        if (!(ended && converter.readableEnded)) throw error;
      });
    } finally {
      read.destroy();
      await handle.close();
    }
  }

  /** Stops the copy in progress and drops the queue. */
  async close(): Promise<void> {
    this.stopping.abort();
    await this.worker;
    this.jobs.length = 0;
  }
}
