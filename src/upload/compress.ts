/**
 * gzip a chunk only where it pays. Kernels, initramfs and squashfs are already
 * compressed and barely shrink, and deflating incompressible data runs at a few tens
 * of MB/s, slower than the link: so a 64 KiB sample of the chunk is tried first (while
 * the image is hashed, so sending starts at once), and only a chunk whose sample
 * shrinks by a fifth is compressed whole (level 1: fast, most of the gain).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
/** Compress the whole chunk only when the sample promises at least this ratio... */
const PROMISING = 0.8;
/** ...and send it compressed only when it really saves at least a tenth. */
const WORTH = 0.9;

/** Windows spread evenly over the chunk make the sample; their share estimates the whole. */
const WINDOWS = 16;
const WINDOW = 4 * 1024;

/** Where the sample of a chunk of `length` bytes lies: [offset in the chunk, bytes]. */
function sampleWindows(length: number): [number, number][] {
  if (length <= WINDOWS * WINDOW) return [[0, length]];
  const step = Math.floor((length - WINDOW) / (WINDOWS - 1));
  return Array.from({ length: WINDOWS }, (_, i) => [i * step, WINDOW]);
}

/**
 * Whether the chunk looks worth compressing: its sample shrinks by a fifth. The sample is
 * copied out before this returns, so the caller may reuse `raw` at once.
 */
export async function promising(raw: Buffer): Promise<boolean> {
  const sample = Buffer.concat(
    sampleWindows(raw.length).map(([at, n]) => raw.subarray(at, at + n)),
  );
  return (await gzipAsync(sample, { level: 1 })).length <= sample.length * PROMISING;
}

/** The body to send for a chunk `promising` said could shrink: gzip if it saves a tenth. */
export async function chunkBody(raw: Buffer): Promise<{ data: Buffer; gzip: boolean }> {
  const packed = await gzipAsync(raw, { level: 1 });
  return packed.length <= raw.length * WORTH
    ? { data: packed, gzip: true }
    : { data: raw, gzip: false };
}
