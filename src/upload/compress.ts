/**
 * gzip a chunk only where it pays. Kernels, initramfs and squashfs are already
 * compressed and barely shrink, and deflating incompressible data runs at a few tens
 * of MB/s, slower than the link: so a 48 KiB sample is tried first, and only a chunk
 * whose sample shrinks is compressed whole (level 1: fast, most of the gain).
 */
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
/** Three windows (start, middle, end) of this size are tried before the whole chunk. */
const WINDOW = 16 * 1024;
/** Send compressed only when it saves at least this share of the bytes. */
const WORTH = 0.9;

export interface Body {
  data: Buffer;
  gzip: boolean;
}

function sampleOf(raw: Buffer): Buffer {
  if (raw.length <= 3 * WINDOW) return raw;
  const middle = Math.floor(raw.length / 2 - WINDOW / 2);
  return Buffer.concat([
    raw.subarray(0, WINDOW),
    raw.subarray(middle, middle + WINDOW),
    raw.subarray(raw.length - WINDOW),
  ]);
}

export async function chunkBody(raw: Buffer): Promise<Body> {
  const sample = sampleOf(raw);
  const probe = await gzipAsync(sample, { level: 1 });
  if (probe.length > sample.length * WORTH) return { data: raw, gzip: false };
  const packed = await gzipAsync(raw, { level: 1 });
  return packed.length <= raw.length * WORTH
    ? { data: packed, gzip: true }
    : { data: raw, gzip: false };
}
