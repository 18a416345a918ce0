/**
 * Reads the drive back through the API's read endpoint (up to 4 MiB a read, in parallel)
 * and compares each piece's sha256 with the image's. `full` checks every byte of the
 * image; `sample` checks a 256 KiB piece of each of up to four chunks this run wrote (the
 * first, the last and two at random), a cheap proof that the writes landed where and
 * as they should, or, when it wrote none (the drive was up to date), of four chunks spread
 * over the whole image. A sample always reads the image's first 256 KiB: the boot sector
 * and volume descriptors, and the 4 KiB a fresh drive of the real service already holds.
 */
import { open } from 'node:fs/promises';
import type { DriveApi } from '../drive/api.js';
import { sha256 } from '../files.js';
import { chunkLength, readFully, type ImageDigests } from './image.js';

export function chunksToVerify(
  mode: 'none' | 'sample' | 'full',
  sent: readonly number[],
  total: number,
  random = Math.random,
): number[] {
  const all = Array.from({ length: total }, (_, i) => i);
  if (mode === 'full') return all;
  if (mode === 'none' || total === 0) return [];
  const sorted = sent.length > 0 ? [...sent].sort((a, b) => a - b) : all;
  const pick = new Set([0, sorted[0] ?? 0, sorted.at(-1) ?? 0]);
  for (let tries = 0; pick.size < Math.min(5, sorted.length + 1) && tries < 32; tries++) {
    pick.add(sorted[Math.floor(random() * sorted.length)] ?? 0);
  }
  return [...pick].sort((a, b) => a - b);
}

/**
 * What the read-back checks of each chunk: `full` every chunk whole; `sample` one piece of
 * the chunks chunksToVerify picks. A resumed run did not send what the interrupted one
 * did: every chunk it does not send is read back whole, whatever the mode.
 */
export function readBackPlan(
  mode: 'none' | 'sample' | 'full',
  plan: { todo: readonly number[]; resumed: boolean },
  total: number,
  random = Math.random,
): Map<number, 'whole' | 'one-piece'> {
  const checks = new Map<number, 'whole' | 'one-piece'>();
  const how = mode === 'full' ? 'whole' : 'one-piece';
  for (const i of chunksToVerify(mode, plan.todo, total, random)) checks.set(i, how);
  if (plan.resumed) {
    const sending = new Set(plan.todo);
    for (let i = 0; i < total; i++) if (!sending.has(i)) checks.set(i, 'whole');
  }
  return new Map([...checks].sort(([a], [b]) => a - b));
}

/**
 * Reads of a whole chunk go out in pieces of at most this (the API's read limit): a chunk
 * of 4 MiB or less is one read, hashed as it streams in and compared with the chunk's
 * digest, so nothing is read from the image and each chunk costs one round trip.
 */
const PIECE = 4 * 2 ** 20;

/**
 * A few chunks alone (with the transfers beside them, fewer than half the connections: the
 * last chunk confirmed): each is read in 1 MiB pieces instead, in parallel, so a lone chunk
 * is not left to one connection's speed. With more going on the link is full anyway, and
 * splitting would only add a round trip per piece (measured on the bench's link: 9 chunks
 * of 4 MiB read back in about 0.86 s whole, 0.96 s in 1 MiB pieces).
 */
const SMALL_PIECE = 2 ** 20;

/** What `sample` reads of each chunk it checks: enough to prove the write landed. */
const SAMPLE_PIECE = 256 * 1024;

/**
 * Indexes of the chunks whose bytes on the drive differ from the image. Each piece read
 * back is hashed as it streams in and compared with the chunk's digest (a whole chunk) or
 * with the same piece of the image file, so memory stays at one piece per connection.
 * `beside` counts the other transfers under way (see SMALL_PIECE).
 */
export async function findMismatches(
  api: DriveApi,
  drive: string,
  image: string,
  d: ImageDigests,
  indexes: readonly number[],
  concurrency: number,
  sample: 'one-piece' | 'whole',
  counted: { bytesRead: number } = { bytesRead: 0 },
  beside = 0,
): Promise<number[]> {
  const pieces = indexes.flatMap((index) => {
    const start = index * d.chunkSize;
    const length = chunkLength(index, d.size, d.chunkSize);
    if (sample === 'one-piece') {
      const size = Math.min(SAMPLE_PIECE, length);
      // Chunk 0's piece is the image's start, always (see the header).
      const at = index === 0 ? 0 : Math.floor(Math.random() * Math.floor(length / size)) * size;
      return [{ index, offset: start + at, size }];
    }
    const piece = (indexes.length + beside) * 2 < concurrency ? SMALL_PIECE : PIECE;
    return Array.from({ length: Math.ceil(length / piece) }, (_, k) => ({
      index,
      offset: start + k * piece,
      size: Math.min(piece, length - k * piece),
    }));
  });
  return mismatchesIn(api, drive, image, d, pieces, concurrency, counted);
}

/** A range of the image to read back, inside chunk `index`. */
interface ReadPiece {
  index: number;
  offset: number;
  size: number;
}

/**
 * Indexes of the chunks in which one of `pieces` reads back different from the image:
 * a piece that is a whole chunk is compared with the chunk's digest, any other with the
 * same range of the image file (read while the drive's bytes come in).
 */
async function mismatchesIn(
  api: DriveApi,
  drive: string,
  image: string,
  d: ImageDigests,
  pieces: readonly ReadPiece[],
  concurrency: number,
  counted: { bytesRead: number },
): Promise<number[]> {
  const bad = new Set<number>();
  const handle = await open(image, 'r');
  const largest = Math.max(0, ...pieces.map((p) => p.size));
  let next = 0;
  const worker = async () => {
    let buffer: Buffer | undefined; // only for pieces smaller than their chunk
    for (let piece = pieces[next++]; piece; piece = pieces[next++]) {
      if (bad.has(piece.index)) continue;
      const whole =
        piece.offset === piece.index * d.chunkSize &&
        piece.size === chunkLength(piece.index, d.size, d.chunkSize);
      const reading = api.readDigest(drive, piece.offset, piece.size);
      reading.catch(() => undefined); // awaited below
      let expected = d.chunks[piece.index];
      if (!whole) {
        buffer ??= Buffer.allocUnsafe(Math.min(PIECE, largest));
        const want = buffer.subarray(0, piece.size);
        await readFully(handle, want, piece.offset);
        expected = sha256(want);
      }
      const got = await reading;
      counted.bytesRead += got.bytes;
      if (got.bytes !== piece.size || got.sha256 !== expected) bad.add(piece.index);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, pieces.length) }, worker));
  } finally {
    await handle.close();
  }
  return [...bad].sort((a, b) => a - b);
}
