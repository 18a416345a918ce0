/**
 * The image to upload: checked before anything is sent, then read once to get its
 * sha256 and one digest per chunk, the basis for skipping what the drive already holds.
 */
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { DisklessError } from '../errors.js';
import { sha256 } from '../files.js';
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

// The whole-image sha256 is computed on a second thread while this one hashes each
// chunk: the two passes over the data then cost about one (the machines have 2 cores).
const WHOLE_IMAGE_HASHER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const fd = openSync(workerData.file, 'r');
const hash = createHash('sha256');
const buffer = Buffer.allocUnsafe(4 << 20);
for (let at = 0; at < workerData.size; ) {
  const n = readSync(fd, buffer, 0, Math.min(buffer.length, workerData.size - at), at);
  if (n === 0) throw new Error('the file got shorter while it was read');
  hash.update(buffer.subarray(0, n));
  at += n;
}
closeSync(fd);
parentPort.postMessage(hash.digest('hex'));
`;

function wholeImageSha256(file: string, size: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WHOLE_IMAGE_HASHER, { eval: true, workerData: { file, size } });
    worker.once('message', (hex: string) => {
      resolve(hex);
    });
    worker.once('error', reject);
  });
}

/**
 * The image's sha256, a digest per chunk and which chunks are worth compressing.
 * Memory: one chunk (plus the hashing thread's).
 */
export async function digestImage(
  file: string,
  size: number,
  chunkSize: number,
): Promise<ImageDigests> {
  const whole = wholeImageSha256(file, size);
  whole.catch(() => undefined); // awaited below, after the chunks
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(Math.min(chunkSize, size));
    const zeros = new Map<number, string>();
    const chunks: string[] = [];
    const zero: boolean[] = [];
    const compressible: boolean[] = [];
    for (let i = 0; i < chunkCount(size, chunkSize); i++) {
      const length = chunkLength(i, size, chunkSize);
      const view = buffer.subarray(0, length);
      await readFully(handle, view, i * chunkSize);
      const digest = sha256(view);
      let zeroForLength = zeros.get(length);
      if (zeroForLength === undefined) {
        zeroForLength = zeroDigest(length);
        zeros.set(length, zeroForLength);
      }
      const isZero = digest === zeroForLength;
      chunks.push(digest);
      zero.push(isZero);
      compressible.push(!isZero && promising(view));
    }
    return { size, chunkSize, sha256: await whole, chunks, zero, compressible };
  } finally {
    await handle.close();
  }
}
