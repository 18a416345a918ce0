/**
 * Sends chunks of the image in parallel over the API's kept-alive connections. Chunks
 * that do not compress (most of a boot image) stream from the file; a worker reads a
 * chunk whole into its one buffer only to gzip it (memory is bounded by concurrency x
 * chunk size at worst). Transient failures are retried. The first chunk that
 * still fails stops new work; the writes in flight finish, so the journal stays exact.
 * A service that answers 409 busy to a write may refuse concurrent writes to one drive
 * (the only production uploader on record wrote one chunk at a time "to avoid
 * collisions"): after the first such answer, writes go one at a time.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { DriveApiError, isTransient, NetworkError } from '../drive/api-error.js';
import type { DriveApi, WriteBody } from '../drive/api.js';
import { withRetry, type RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage } from '../errors.js';
import { chunkBody } from './compress.js';
import { chunkLength, readFully, type ImageDigests } from './image.js';

export interface TransferStats {
  chunksSent: number;
  /** Bytes of chunk bodies on the wire (after compression), successful requests only. */
  bytesSent: number;
  /** Chunks sent gzip-compressed. */
  chunksCompressed: number;
  /** Requests retried after a transient failure. */
  retries: number;
}

export function emptyStats(): TransferStats {
  return { chunksSent: 0, bytesSent: 0, chunksCompressed: 0, retries: 0 };
}

export interface Transfer {
  api: DriveApi;
  drive: string;
  image: string;
  digests: ImageDigests;
  concurrency: number;
  policy: RetryPolicy;
  stats: TransferStats;
  /** Called once the server has confirmed chunk `index` (the journal). */
  confirmed: (index: number, bytes: number) => Promise<void>;
  onRetry: (index: number, error: unknown, attempt: number, delayMs: number) => void;
}

export async function sendChunks(t: Transfer, indexes: readonly number[]): Promise<void> {
  const { size, chunkSize, chunks, compressible } = t.digests;
  const handle = await open(t.image, 'r');
  let next = 0;
  let failure: { index: number; error: unknown } | undefined;
  let oneAtATime = false;
  let lane: Promise<unknown> = Promise.resolve();
  // Writes sent before the switch to one at a time: the lane waits for them first.
  const inFlight = new Set<Promise<void>>();
  const write = (offset: number, body: () => WriteBody): Promise<void> => {
    if (!oneAtATime) {
      const sent = t.api.writeOnce(t.drive, offset, body());
      inFlight.add(sent);
      const drop = () => inFlight.delete(sent);
      sent.then(drop, drop);
      return sent;
    }
    const turn = lane.then(() => t.api.writeOnce(t.drive, offset, body()));
    lane = turn.catch(() => undefined);
    return turn;
  };
  const oneByOne = () => {
    if (oneAtATime) return;
    oneAtATime = true;
    lane = Promise.allSettled([...inFlight]);
  };

  const worker = async () => {
    let buffer: Buffer | undefined; // only chunks worth compressing are read whole
    while (failure === undefined && next < indexes.length) {
      const index = indexes[next++] ?? 0;
      const offset = index * chunkSize;
      const length = chunkLength(index, size, chunkSize);
      try {
        let packed: { data: Buffer; gzip: boolean } | undefined;
        if (compressible[index]) {
          buffer ??= Buffer.allocUnsafe(Math.min(chunkSize, size));
          const raw = buffer.subarray(0, length);
          await readFully(handle, raw, offset);
          packed = await chunkBody(raw);
        }
        // The rest stream from the image: sending starts at once and memory stays small.
        const body = (): WriteBody =>
          packed ?? {
            data: createReadStream(t.image, { start: offset, end: offset + length - 1 }),
            gzip: false,
            length,
          };
        await withRetry(
          () => write(offset, body),
          t.policy,
          (error, attempt, delay) => {
            if (error instanceof DriveApiError && error.status === 409) oneByOne();
            t.stats.retries++;
            t.onRetry(index, error, attempt, delay);
          },
        );
        t.stats.chunksSent++;
        t.stats.bytesSent += packed?.data.length ?? length;
        if (packed?.gzip) t.stats.chunksCompressed++;
        await t.confirmed(index, length);
      } catch (error) {
        failure ??= { index, error };
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(t.concurrency, indexes.length) }, worker));
  } finally {
    await handle.close();
  }
  if (failure) {
    const { index, error } = failure;
    if (!(error instanceof DriveApiError || error instanceof NetworkError)) throw error;
    const how = isTransient(error)
      ? `after ${t.policy.attempts} attempts`
      : '(refused, not retried)';
    throw new DisklessError(
      `Writing chunk ${index + 1} of ${chunks.length} (offset ${index * chunkSize}) to drive ${t.drive} failed ${how}: ` +
        `${errorMessage(error)}. ${t.stats.chunksSent} of ${indexes.length} chunks to send were written ` +
        `(${t.stats.bytesSent} bytes sent) and journalled: run again to resume, only the missing chunks will be sent`,
    );
  }
}
