/**
 * The image to upload: checked before anything is sent, then read to get its sha256
 * and one digest per chunk, the basis for skipping what the drive already holds.
 */
import { createHash, type Hash } from 'node:crypto';
import { setImmediate } from 'node:timers/promises';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { DisklessError } from '../errors.js';
import { promising } from './compress.js';

export interface ImageDigests {
  size: number;
  chunkSize: number;
  sha256: string;
  /** sha256 of each chunk, hex; the last chunk may be shorter. */
  chunks: string[];
  /** Chunks that are all zeros (a fresh drive already reads them as zeros). */
  zero: boolean[];
  /** Chunks whose sample compresses well: only these are tried with gzip when sent. */
  compressible: boolean[];
}

/** Size of the image, or a clear error when it is missing, empty or not a file. */
export async function imageSize(file: string): Promise<number> {
  let info;
  try {
    info = await stat(file);
  } catch {
    throw new DisklessError(
      `Input "image": got "${file}"; expected an existing file (it does not exist)`,
    );
  }
  if (!info.isFile()) {
    throw new DisklessError(
      `Input "image": got "${file}"; expected a regular file, not a ${info.isDirectory() ? 'directory' : 'special file'}`,
    );
  }
  if (info.size === 0) {
    throw new DisklessError(
      `Input "image": got "${file}"; expected a non-empty file (it is 0 bytes)`,
    );
  }
  return info.size;
}

/** Identifies the file's content version: a change or replacement changes it. */
export async function imageIdentity(file: string): Promise<string> {
  const s = await stat(file, { bigint: true });
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

export function chunkLength(index: number, size: number, chunkSize: number): number {
  return Math.min(chunkSize, size - index * chunkSize);
}

/** Reads exactly buffer.length bytes at `position` (short reads are retried). */
export async function readFully(
  handle: FileHandle,
  buffer: Buffer,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await handle.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) throw new DisklessError('image: the file got shorter while it was read');
    done += bytesRead;
  }
}

/** The image's hashes under way: its sha256 comes first, the digests of its chunks after. */
export interface ImageHashing {
  sha256: Promise<string>;
  digests: Promise<ImageDigests>;
}

/**
 * Starts hashing the image, in two passes on this thread, a slice at a time (about a
 * millisecond each, so the API's answers wait no longer than that): first the whole
 * image's sha256, which names a standby drive and so is wanted first; then each chunk's
 * digest, whether it is zeros, and whether its sample compresses, while the drive is
 * being created. A worker thread would cost more CPU to start (40 to 90 ms on a small
 * runner) than the hashing itself, and compete with the API's answers for the cores.
 * Memory: two chunks.
 */
export function hashImage(file: string, size: number, chunkSize: number): ImageHashing {
  const whole = wholeSha256(file, size, chunkSize);
  const digests = whole.then(async (hex) => ({
    ...(await chunkDigests(file, size, chunkSize)),
    sha256: hex,
  }));
  // Each is awaited by the caller, or not at all after an early refusal: never unhandled.
  whole.catch(() => undefined);
  digests.catch(() => undefined);
  return { sha256: whole, digests };
}

/**
 * How much is hashed between two turns of the event loop: an API answer that comes in
 * meanwhile waits about a millisecond, however large the chunks (a 4 MiB slice held the
 * drive's creation back by 16 ms, its answer passing through several turns).
 */
const SLICE = 2 ** 20;

/** Feeds `data` to `hashes` a slice at a time, letting the event loop turn in between. */
async function updateInSlices(hashes: readonly Hash[], data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += SLICE) {
    if (at > 0) await setImmediate();
    const slice = data.subarray(at, at + SLICE);
    for (const hash of hashes) hash.update(slice);
  }
}

/**
 * Calls `each` with every chunk of the file in turn; the next chunk is read (on the
 * thread pool) into a second buffer while `each` works on this one.
 */
async function eachChunk(
  file: string,
  size: number,
  chunkSize: number,
  each: (index: number, chunk: Buffer) => Promise<void>,
): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const even = Buffer.allocUnsafe(Math.min(chunkSize, size));
    const odd = Buffer.allocUnsafe(Math.min(chunkSize, size));
    const read = (index: number) => {
      const view = (index % 2 === 0 ? even : odd).subarray(0, chunkLength(index, size, chunkSize));
      const done = readFully(handle, view, index * chunkSize).then(() => view);
      done.catch(() => undefined); // awaited in turn, unless an earlier read failed
      return done;
    };
    const count = chunkCount(size, chunkSize);
    let next = read(0);
    for (let index = 0; index < count; index++) {
      const chunk = await next;
      if (index + 1 < count) next = read(index + 1);
      await each(index, chunk);
    }
  } finally {
    await handle.close();
  }
}

/** The whole image's sha256. */
async function wholeSha256(file: string, size: number, chunkSize: number): Promise<string> {
  const whole = createHash('sha256');
  await eachChunk(file, size, chunkSize, (_, chunk) => updateInSlices([whole], chunk));
  return whole.digest('hex');
}

/** A digest per chunk, which chunks are zeros, which are worth compressing. */
async function chunkDigests(
  file: string,
  size: number,
  chunkSize: number,
): Promise<Omit<ImageDigests, 'sha256'>> {
  const count = chunkCount(size, chunkSize);
  const chunks = new Array<string>(count).fill('');
  const zero = new Array<boolean>(count).fill(false);
  const compressible = new Array<boolean>(count).fill(false);
  // Compared with, never written: all-zero pages that take no memory until read.
  const zeros = Buffer.alloc(Math.min(chunkSize, size));
  const samples: Promise<void>[] = [];
  try {
    await eachChunk(file, size, chunkSize, async (index, chunk) => {
      const digest = createHash('sha256');
      await updateInSlices([digest], chunk);
      chunks[index] = digest.digest('hex');
      zero[index] = chunk.equals(zeros.subarray(0, chunk.length));
      if (zero[index]) return; // zero chunks are never sent, so never compressed
      // promising copies its sample out at once: the chunk's buffer is read into again.
      const sampled = promising(chunk).then((yes) => {
        compressible[index] = yes;
      });
      sampled.catch(() => undefined); // awaited below
      samples.push(sampled);
    });
    await Promise.all(samples);
    return { size, chunkSize, chunks, zero, compressible };
  } finally {
    await Promise.allSettled(samples);
  }
}
