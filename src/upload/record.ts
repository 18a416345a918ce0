/**
 * What a finished upload leaves on the drive, as user:* metadata: the image's sha256,
 * size and chunk size, a short digest per chunk, and the drive's write counters at
 * that moment. The next run trusts it only while those counters are unchanged (nobody
 * wrote to the drive since), and then sends only the chunks whose digest differs.
 * Besides, the release the image boots (when known: the ledger of releases in use reads
 * it) and when the upload finished (standby mode tells the newest drive of a family by it).
 */
import { chunkCount } from './image.js';
import type { DriveInfo } from '../drive/api.js';

/** Hex characters kept per chunk digest (48 bits): enough to tell chunks apart. */
const SHORT = 12;

export interface DriveRecord {
  sha256: string;
  size: number;
  chunkSize: number;
  /** Short digests, one per chunk. */
  chunks: string[];
  writeRequests: number;
  writeBytes: number;
  /** The release the image boots, when the upload was told. */
  release?: string | undefined;
  /** When the upload finished, ISO 8601 UTC. */
  uploaded?: string | undefined;
}

/** The user:* keys of the record (without `user:`). */
export const KEYS = {
  sha256: 'diskless-sha256',
  size: 'diskless-size',
  chunkSize: 'diskless-chunk-size',
  chunks: 'diskless-chunks',
  writes: 'diskless-writes',
  release: 'diskless-release',
  uploaded: 'diskless-uploaded',
} as const;

/** When the drive's image was uploaded ('' when it has no such record): sorts as text. */
export function uploadedAt(drive: { meta: Record<string, string> }): string {
  return drive.meta[KEYS.uploaded] ?? '';
}

/** The release the drive's image boots, as recorded ('' when unknown). */
export function releaseOf(drive: { meta: Record<string, string> }): string {
  return drive.meta[KEYS.release] ?? '';
}

export function shortDigest(hex: string): string {
  return hex.slice(0, SHORT);
}

export function encodeRecord(r: DriveRecord): Record<string, string> {
  return {
    [`user:${KEYS.sha256}`]: r.sha256,
    [`user:${KEYS.size}`]: String(r.size),
    [`user:${KEYS.chunkSize}`]: String(r.chunkSize),
    [`user:${KEYS.chunks}`]: r.chunks.join(''),
    [`user:${KEYS.writes}`]: `${r.writeRequests}:${r.writeBytes}`,
    // Always set, so a record of another image never keeps an older release or time.
    [`user:${KEYS.release}`]: r.release ?? '',
    [`user:${KEYS.uploaded}`]: r.uploaded ?? '',
  };
}

export function decodeRecord(meta: Record<string, string>): DriveRecord | undefined {
  const sha256 = meta[KEYS.sha256];
  const size = Number(meta[KEYS.size]);
  const chunkSize = Number(meta[KEYS.chunkSize]);
  const packed = meta[KEYS.chunks] ?? '';
  const writes = /^(\d+):(\d+)$/.exec(meta[KEYS.writes] ?? '');
  if (!sha256 || !writes || !(size > 0) || !(chunkSize > 0)) return undefined;
  if (packed.length !== chunkCount(size, chunkSize) * SHORT) return undefined;
  const chunks: string[] = [];
  for (let i = 0; i < packed.length; i += SHORT) chunks.push(packed.slice(i, i + SHORT));
  return {
    sha256,
    size,
    chunkSize,
    chunks,
    writeRequests: Number(writes[1]),
    writeBytes: Number(writes[2]),
  };
}

/** The record, if the drive shows no write since it was made; else undefined. */
export function trustedRecord(drive: DriveInfo): DriveRecord | undefined {
  const record = decodeRecord(drive.meta);
  if (!record || drive.writeRequests === undefined || drive.writeBytes === undefined)
    return undefined;
  if (drive.writeRequests !== record.writeRequests || drive.writeBytes !== record.writeBytes)
    return undefined;
  return record;
}
