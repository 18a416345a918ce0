/**
 * Sends chunks of the image in parallel over the API's kept-alive connections. Each
 * worker owns one chunk-sized buffer (memory is bounded by concurrency x chunk size),
 * compresses only where it pays and retries transient failures. The first chunk that
 * still fails stops new work; the writes in flight finish, so the journal stays exact.
 */
import { open } from 'node:fs/promises';
import { ApiError, isTransient, NetworkError } from '../drive/api-error.js';
import type { DriveApi } from '../drive/api.js';
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
  const { size, chunkSize, chunks } = t.digests;
  const handle = await open(t.image, 'r');
  let next = 0;
  let failure: { index: number; error: unknown } | undefined;

  const worker = async () => {
    const buffer = Buffer.allocUnsafe(Math.min(chunkSize, size));
    while (failure === undefined && next < indexes.length) {
      const index = indexes[next++] ?? 0;
      const raw = buffer.subarray(0, chunkLength(index, size, chunkSize));
      try {
        await readFully(handle, raw, index * chunkSize);
        const body = await chunkBody(raw);
        await withRetry(
          () => t.api.writeOnce(t.drive, index * chunkSize, body.data, body.gzip),
          t.policy,
          (error, attempt, delay) => {
            t.stats.retries++;
            t.onRetry(index, error, attempt, delay);
          },
        );
        t.stats.chunksSent++;
        t.stats.bytesSent += body.data.length;
        if (body.gzip) t.stats.chunksCompressed++;
        await t.confirmed(index, raw.length);
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
    if (!(error instanceof ApiError || error instanceof NetworkError)) throw error;
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
