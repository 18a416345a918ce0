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
  /** Told each piece the server confirmed (to read it back at once). */
  pieceConfirmed?: (piece: Piece) => void;
  onRetry: (index: number, error: unknown, attempt: number, delayMs: number) => void;
}

/** The largest write: long enough that a request's round trip is a small part of it. */
const MAX_PIECE = 2 ** 20;
/** Pieces are multiples of this (aligned), the first round's smallest. */
const MIN_PIECE = 64 * 1024;
/**
 * The smallest piece near the end: a connection spends a round trip (50 ms and more) per
 * request, and with shorter bodies too few of them would be sending at once to fill the link.
 */
const TAIL_PIECE = 512 * 1024;

/** A range of the image written in one request, inside chunk `index`. */
export interface Piece {
  index: number;
  offset: number;
  length: number;
}

/**
 * Cuts the chunks into pieces as the connections ask for them, in chunk order. Pieces of
 * one size sent together would finish together, and then every connection would wait out
 * its round trip at once, leaving the link idle: so the first round is staggered (1/n,
 * 2/n, ... of a piece), and pieces shrink as the end nears (a share of what is left), so
 * the connections run out of work at about the same time instead of one by one.
 */
export function pieceCutter(
  d: Pick<ImageDigests, 'size' | 'chunkSize'>,
  indexes: readonly number[],
  concurrency: number,
): () => Piece | undefined {
  let left = indexes.reduce((sum, i) => sum + chunkLength(i, d.size, d.chunkSize), 0);
  let chunk = 0;
  let within = 0;
  let issued = 0;
  const align = (n: number) => Math.max(MIN_PIECE, Math.floor(n / MIN_PIECE) * MIN_PIECE);
  return () => {
    const index = indexes[chunk];
    if (index === undefined) return undefined;
    const length = chunkLength(index, d.size, d.chunkSize);
    const target =
      issued < concurrency
        ? align((MAX_PIECE * (issued + 1)) / concurrency)
        : align(Math.min(MAX_PIECE, Math.max(TAIL_PIECE, left / concurrency)));
    const size = Math.min(target, length - within);
    const piece = { index, offset: index * d.chunkSize + within, length: size };
    issued++;
    left -= size;
    within += size;
    if (within >= length) {
      chunk++;
      within = 0;
    }
    return piece;
  };
}

export async function sendChunks(t: Transfer, indexes: readonly number[]): Promise<void> {
  const { size, chunkSize, chunks, compressible } = t.digests;
  const nextPiece = pieceCutter(t.digests, indexes, t.concurrency);
  /** Bytes of each chunk confirmed so far; chunks with a gzip piece. */
  const confirmedBytes = new Map<number, number>();
  const gzipped = new Set<number>();
  const handle = await open(t.image, 'r');
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
    t.pieceConfirmed?.(p);
    if (packed?.gzip) gzipped.add(p.index);
    const done = (confirmedBytes.get(p.index) ?? 0) + p.length;
    confirmedBytes.set(p.index, done);
    const length = chunkLength(p.index, size, chunkSize);
    if (done < length) return;
    t.stats.chunksSent++;
    if (gzipped.has(p.index)) t.stats.chunksCompressed++;
    await t.confirmed(p.index, length);
  };

  const worker = async () => {
    let buffer: Buffer | undefined; // only pieces of chunks worth compressing are read whole
    const own = () => (buffer ??= Buffer.allocUnsafe(Math.min(MAX_PIECE, chunkSize)));
    for (let p = nextPiece(); p && failure === undefined; p = nextPiece()) {
      try {
        await sendPiece(p, own);
      } catch (error) {
        failure ??= { piece: p, error };
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: t.concurrency }, worker));
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
