/**
 * The image to upload: checked before anything is sent, then read to get its sha256
 * and one digest per chunk, the basis for skipping what the drive already holds.
 */
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { DisklessError } from '../errors.js';
import { promisingSample, sampleWindows } from './compress.js';

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

/** sha256 of `length` zero bytes, without allocating them all. */
export function zeroDigest(length: number): string {
  const block = Buffer.alloc(Math.min(length, 1 << 16));
  const hash = createHash('sha256');
  for (let left = length; left > 0; left -= block.length) {
    hash.update(left >= block.length ? block : block.subarray(0, left));
  }
  return hash.digest('hex');
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

// Each chunk's digest, on a second thread in one pass over the image, told chunk by
// chunk. The whole image's sha256 is computed on the main thread at the same time
// (wholeSha256): it names a standby drive, so it is wanted first, before the thread has
// even started (40 to 90 ms on a small runner); both hashes over the same bytes then take
// the time of one on two cores.
const HASHER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const { file, size, chunkSize } = workerData;
const fd = openSync(file, 'r');
try {
  const buffer = Buffer.allocUnsafe(Math.min(chunkSize, size));
  const block = Buffer.alloc(Math.min(chunkSize, 1 << 16));
  const zeros = new Map();
  const zeroDigest = (length) => {
    const hash = createHash('sha256');
    for (let left = length; left > 0; left -= block.length) {
      hash.update(left >= block.length ? block : block.subarray(0, left));
    }
    return hash.digest('hex');
  };
  for (let index = 0, at = 0; at < size; index++, at += chunkSize) {
    const length = Math.min(chunkSize, size - at);
    const view = buffer.subarray(0, length);
    for (let done = 0; done < length; ) {
      const n = readSync(fd, view, done, length - done, at + done);
      if (n === 0) throw new Error('the file got shorter while it was read');
      done += n;
    }
    const digest = createHash('sha256').update(view).digest('hex');
    if (!zeros.has(length)) zeros.set(length, zeroDigest(length));
    parentPort.postMessage({ index, digest, zero: digest === zeros.get(length) });
  }
  parentPort.postMessage({ done: true });
} finally {
  closeSync(fd);
}
`;

type HasherMessage = { index: number; digest: string; zero: boolean } | { done: true };

/** Whether chunk `index` looks worth compressing, from its sample read off the file. */
async function sampleCompressible(
  handle: FileHandle,
  index: number,
  size: number,
  chunkSize: number,
): Promise<boolean> {
  const start = index * chunkSize;
  const windows = sampleWindows(chunkLength(index, size, chunkSize));
  const sample = Buffer.allocUnsafe(windows.reduce((sum, [, n]) => sum + n, 0));
  let at = 0;
  for (const [offset, n] of windows) {
    await readFully(handle, sample.subarray(at, at + n), start + offset);
    at += n;
  }
  return promisingSample(sample);
}

/** The image's hashes under way: its sha256 comes first, the digests of its chunks after. */
export interface ImageHashing {
  sha256: Promise<string>;
  digests: Promise<ImageDigests>;
}

/**
 * Starts hashing the image: its sha256 (on this thread, a few milliseconds a chunk at a
 * time, so the API's answers wait no longer than that), and a digest per chunk on a worker
 * thread in one pass, where each non-zero chunk's small sample is also tried with gzip as
 * its digest comes in. Memory: two chunks and one sample per chunk being tried.
 */
export function hashImage(file: string, size: number, chunkSize: number): ImageHashing {
  const sha256 = wholeSha256(file, size, chunkSize);
  const chunks = chunkDigests(file, size, chunkSize);
  const digests = Promise.all([sha256, chunks]).then(([hex, c]) => ({ ...c, sha256: hex }));
  // Each is awaited by the caller, or not at all after an early refusal: never unhandled.
  sha256.catch(() => undefined);
  digests.catch(() => undefined);
  return { sha256, digests };
}

/** The whole image's sha256, read a chunk at a time. */
async function wholeSha256(file: string, size: number, chunkSize: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const whole = createHash('sha256');
    // Two buffers: the next chunk is read (on the thread pool) while this one is hashed.
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
      const view = await next;
      if (index + 1 < count) next = read(index + 1);
      whole.update(view);
    }
    return whole.digest('hex');
  } finally {
    await handle.close();
  }
}

/** A digest per chunk (on a worker thread), which are zeros, which are worth compressing. */
async function chunkDigests(
  file: string,
  size: number,
  chunkSize: number,
): Promise<Omit<ImageDigests, 'sha256'>> {
  const count = chunkCount(size, chunkSize);
  const chunks = new Array<string>(count).fill('');
  const zero = new Array<boolean>(count).fill(false);
  const compressible = new Array<boolean>(count).fill(false);
  const handle = await open(file, 'r');
  const samples: Promise<void>[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const worker = new Worker(HASHER, { eval: true, workerData: { file, size, chunkSize } });
      worker.on('message', (m: HasherMessage) => {
        if ('done' in m) {
          resolve();
          return;
        }
        chunks[m.index] = m.digest;
        zero[m.index] = m.zero;
        if (m.zero) return; // zero chunks are never sent, so never compressed
        const sampled = sampleCompressible(handle, m.index, size, chunkSize).then((yes) => {
          compressible[m.index] = yes;
        });
        sampled.catch(() => undefined); // awaited below
        samples.push(sampled);
      });
      worker.once('error', (error) => {
        reject(new DisklessError(`image ${file}: ${error.message}`));
      });
      worker.once('exit', (code) => {
        reject(new DisklessError(`image ${file}: the hashing thread stopped (exit code ${code})`));
      });
    });
    await Promise.all(samples);
    return { size, chunkSize, chunks, zero, compressible };
  } finally {
    await Promise.allSettled(samples);
    await handle.close();
  }
}
