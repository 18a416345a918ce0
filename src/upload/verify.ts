/**
 * Reads chunks back through the API's read endpoint (at most 4 MiB a request) and
 * compares their sha256 with the image's. `sample` checks the chunks this run wrote
 * (the first, the last and two more at random); `full` checks every chunk.
 */
import { createHash } from 'node:crypto';
import type { DriveApi } from '../drive/api.js';
import { chunkLength, type ImageDigests } from './image.js';

export const MAX_READ = 4 * 2 ** 20;

export function chunksToVerify(
  mode: 'none' | 'sample' | 'full',
  sent: readonly number[],
  total: number,
  random = Math.random,
): number[] {
  if (mode === 'full') return Array.from({ length: total }, (_, i) => i);
  if (mode === 'none' || sent.length === 0) return [];
  const sorted = [...sent].sort((a, b) => a - b);
  const pick = new Set([sorted[0] ?? 0, sorted.at(-1) ?? 0]);
  for (let tries = 0; pick.size < Math.min(4, sorted.length) && tries < 32; tries++) {
    pick.add(sorted[Math.floor(random() * sorted.length)] ?? 0);
  }
  return [...pick].sort((a, b) => a - b);
}

async function chunkDigestOnDrive(
  api: DriveApi,
  drive: string,
  d: ImageDigests,
  index: number,
): Promise<string> {
  const hash = createHash('sha256');
  const start = index * d.chunkSize;
  const end = start + chunkLength(index, d.size, d.chunkSize);
  for (let at = start; at < end; at += MAX_READ) {
    const want = Math.min(MAX_READ, end - at);
    const data = await api.read(drive, at, want);
    // A short read would hash fewer bytes and show up as a mismatch, as it should.
    hash.update(data.subarray(0, want));
  }
  return hash.digest('hex');
}

/** Indexes of the chunks whose bytes on the drive differ from the image. */
export async function findMismatches(
  api: DriveApi,
  drive: string,
  digests: ImageDigests,
  indexes: readonly number[],
  concurrency: number,
): Promise<number[]> {
  const bad: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < indexes.length) {
      const index = indexes[next++] ?? 0;
      if ((await chunkDigestOnDrive(api, drive, digests, index)) !== digests.chunks[index])
        bad.push(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, indexes.length) }, worker));
  return bad.sort((a, b) => a - b);
}
