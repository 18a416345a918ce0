/**
 * Sends chunks of the image in parallel over the API's kept-alive connections, each chunk
 * in pieces (writes of at most 1 MiB): the pieces go out in chunk order over all the
 * connections, so the link always carries many transfers, chunks are confirmed one after
 * another as the send goes (the caller reads each back while the others are still being
 * written), and a failed request costs one piece, not a chunk. The chunk stays the unit of
 * digests, journal and "chunks sent": it is confirmed once all its pieces are.
 *
 * Pieces of chunks that do not compress (most of a boot image) stream from the file; a
 * worker reads a piece whole into its one buffer only to gzip it (memory: concurrency x
 * one piece). Transient failures are retried per piece. The first piece that still fails
 * stops new work; the writes in flight finish, so the journal stays exact. A service that
 * answers 409 busy to a write may refuse concurrent writes to one drive (the only
 * production uploader on record wrote one chunk at a time "to avoid collisions"): after
 * the first such answer, writes go one at a time.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { ApiError, isTransient, NetworkError } from '../drive/api-error.js';
import type { DriveApi, WriteBody } from '../drive/api.js';
import { withRetry, type RetryPolicy } from '../drive/retry.js';
import { DisklessError, errorMessage } from '../errors.js';
import { chunkBody } from './compress.js';
import { chunkLength, readFully, type ImageDigests } from './image.js';

export interface TransferStats {
  chunksSent: number;
  /** Bytes of chunk bodies on the wire (after compression), successful requests only. */
  bytesSent: number;
  /** Chunks sent gzip-compressed (at least one of their pieces). */
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
  /** Called once the server has confirmed every piece of chunk `index` (the journal). */
  confirmed: (index: number, bytes: number) => Promise<void>;
  onRetry: (index: number, error: unknown, attempt: number, delayMs: number) => void;
}

/** The largest write: long enough that a request's round trip is a small part of it. */
const MAX_PIECE = 2 ** 20;
/** The smallest: below it the round trips dominate. Pieces are multiples of it (aligned). */
const MIN_PIECE = 64 * 1024;

/**
 * The size of the pieces: at most 1 MiB and the chunk, and small enough that there are
 * at least two pieces per connection, so a small upload still uses every connection.
 */
export function pieceSize(bytes: number, concurrency: number, chunkSize: number): number {
  const fair = Math.floor(bytes / (2 * concurrency) / MIN_PIECE) * MIN_PIECE;
  return Math.min(chunkSize, MAX_PIECE, Math.max(MIN_PIECE, fair));
}

interface Piece {
  index: number;
  offset: number;
  length: number;
}

/** The pieces of the chunks, in chunk order. */
function piecesOf(d: ImageDigests, indexes: readonly number[], piece: number): Piece[] {
  return indexes.flatMap((index) => {
    const start = index * d.chunkSize;
    const length = chunkLength(index, d.size, d.chunkSize);
    return Array.from({ length: Math.ceil(length / piece) }, (_, k) => ({
      index,
      offset: start + k * piece,
      length: Math.min(piece, length - k * piece),
    }));
  });
}

export async function sendChunks(t: Transfer, indexes: readonly number[]): Promise<void> {
  const { size, chunkSize, chunks, compressible } = t.digests;
  const bytes = indexes.reduce((sum, i) => sum + chunkLength(i, size, chunkSize), 0);
  const piece = pieceSize(bytes, t.concurrency, chunkSize);
  const pieces = piecesOf(t.digests, indexes, piece);
  /** Pieces of each chunk not yet confirmed; chunks with a gzip piece. */
  const left = new Map<number, number>();
  for (const p of pieces) left.set(p.index, (left.get(p.index) ?? 0) + 1);
  const gzipped = new Set<number>();
  const handle = await open(t.image, 'r');
  let next = 0;
  let failure: { piece: Piece; error: unknown } | undefined;
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

  const sendPiece = async (p: Piece, buffer: () => Buffer): Promise<void> => {
    let packed: { data: Buffer; gzip: boolean } | undefined;
    if (compressible[p.index]) {
      const raw = buffer().subarray(0, p.length);
      await readFully(handle, raw, p.offset);
      packed = await chunkBody(raw);
    }
    // The rest stream from the image: sending starts at once and memory stays small.
    const body = (): WriteBody =>
      packed ?? {
        data: createReadStream(t.image, { start: p.offset, end: p.offset + p.length - 1 }),
        gzip: false,
        length: p.length,
      };
    await withRetry(
      () => write(p.offset, body),
      t.policy,
      (error, attempt, delay) => {
        if (error instanceof ApiError && error.status === 409) oneByOne();
        t.stats.retries++;
        t.onRetry(p.index, error, attempt, delay);
      },
    );
    t.stats.bytesSent += packed?.data.length ?? p.length;
    if (packed?.gzip) gzipped.add(p.index);
    const rest = (left.get(p.index) ?? 1) - 1;
    left.set(p.index, rest);
    if (rest > 0) return;
    t.stats.chunksSent++;
    if (gzipped.has(p.index)) t.stats.chunksCompressed++;
    await t.confirmed(p.index, chunkLength(p.index, size, chunkSize));
  };

  const worker = async () => {
    let buffer: Buffer | undefined; // only pieces of chunks worth compressing are read whole
    const own = () => (buffer ??= Buffer.allocUnsafe(piece));
    for (let p = pieces[next++]; p && failure === undefined; p = pieces[next++]) {
      try {
        await sendPiece(p, own);
      } catch (error) {
        failure ??= { piece: p, error };
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.min(t.concurrency, pieces.length) }, worker));
  } finally {
    await handle.close();
  }
  if (failure) {
    const { piece: p, error } = failure;
    if (!(error instanceof ApiError || error instanceof NetworkError)) throw error;
    const how = isTransient(error)
      ? `after ${t.policy.attempts} attempts`
      : '(refused, not retried)';
    throw new DisklessError(
      `Writing chunk ${p.index + 1} of ${chunks.length} (its ${p.length} bytes at offset ${p.offset}) to drive ${t.drive} failed ${how}: ` +
        `${errorMessage(error)}. ${t.stats.chunksSent} of ${indexes.length} chunks to send were written ` +
        `(${t.stats.bytesSent} bytes sent) and journalled: run again to resume, only the missing chunks will be sent`,
    );
  }
}
