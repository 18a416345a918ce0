/**
 * The image to upload: checked before anything is sent, then read once to get its
 * sha256 and one digest per chunk, the basis for skipping what the drive already holds.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { DisklessError } from '../errors.js';

export interface ImageDigests {
  size: number;
  chunkSize: number;
  sha256: string;
  /** sha256 of each chunk, hex; the last chunk may be shorter. */
  chunks: string[];
  /** Chunks that are all zeros (a fresh drive already reads them as zeros). */
  zero: boolean[];
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
  handle: import('node:fs/promises').FileHandle,
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

/** One pass over the image: whole-image sha256 and a digest per chunk. Memory: one chunk. */
export async function digestImage(
  file: string,
  size: number,
  chunkSize: number,
): Promise<ImageDigests> {
  const handle = await open(file, 'r');
  try {
    const whole = createHash('sha256');
    const buffer = Buffer.allocUnsafe(Math.min(chunkSize, size));
    const zeros = new Map<number, string>();
    const chunks: string[] = [];
    const zero: boolean[] = [];
    for (let i = 0; i < chunkCount(size, chunkSize); i++) {
      const length = chunkLength(i, size, chunkSize);
      const view = buffer.subarray(0, length);
      await readFully(handle, view, i * chunkSize);
      whole.update(view);
      const digest = createHash('sha256').update(view).digest('hex');
      let zeroForLength = zeros.get(length);
      if (zeroForLength === undefined) {
        zeroForLength = zeroDigest(length);
        zeros.set(length, zeroForLength);
      }
      chunks.push(digest);
      zero.push(digest === zeroForLength);
    }
    return { size, chunkSize, sha256: whole.digest('hex'), chunks, zero };
  } finally {
    await handle.close();
  }
}
