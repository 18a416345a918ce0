/**
 * The image to upload: checked before anything is sent, then read once to get its
 * sha256 and one digest per chunk, the basis for skipping what the drive already holds.
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

// One pass over the image on a second thread: the whole-image sha256 and each chunk's,
// told chunk by chunk, so the main thread stays free to answer the API while it runs.
const HASHER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const { file, size, chunkSize } = workerData;
const fd = openSync(file, 'r');
try {
  const whole = createHash('sha256');
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
    whole.update(view);
    const digest = createHash('sha256').update(view).digest('hex');
    if (!zeros.has(length)) zeros.set(length, zeroDigest(length));
    parentPort.postMessage({ index, digest, zero: digest === zeros.get(length) });
  }
  parentPort.postMessage({ sha256: whole.digest('hex') });
} finally {
  closeSync(fd);
}
`;

type HasherMessage = { index: number; digest: string; zero: boolean } | { sha256: string };

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

/**
 * The image's sha256, a digest per chunk and which chunks are worth compressing. The
 * hashing runs on a worker thread in one pass; this thread only tries each non-zero
 * chunk's small sample with gzip as its digest comes in.
 * Memory: one chunk (the worker's buffer) and one sample per chunk being tried.
 */
export async function digestImage(
  file: string,
  size: number,
  chunkSize: number,
): Promise<ImageDigests> {
  const count = chunkCount(size, chunkSize);
  const chunks = new Array<string>(count).fill('');
  const zero = new Array<boolean>(count).fill(false);
  const compressible = new Array<boolean>(count).fill(false);
  const handle = await open(file, 'r');
  const samples: Promise<void>[] = [];
  try {
    const sha256 = await new Promise<string>((resolve, reject) => {
      const worker = new Worker(HASHER, { eval: true, workerData: { file, size, chunkSize } });
      worker.on('message', (m: HasherMessage) => {
        if ('sha256' in m) {
          resolve(m.sha256);
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
    return { size, chunkSize, sha256, chunks, zero, compressible };
  } finally {
    await Promise.allSettled(samples);
    await handle.close();
  }
}
