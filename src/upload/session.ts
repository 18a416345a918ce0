/**
 * What an upload run carries through its phases in either mode (the session), what it
 * reports (the result), and the small helpers both modes use to log and start writing.
 */
import path from 'node:path';
import type { DriveApi } from '../drive/api.js';
import type { RetryPolicy } from '../drive/retry.js';
import { formatBytes } from '../inputs/fields.js';
import type { Reporter } from '../report.js';
import { chunkCount, type ImageDigests } from './image.js';
import type { UploadDriveOptions } from './options.js';
import type { Plan } from './plan.js';
import type { TransferStats } from './transfer.js';
import type { Phase, WriteContext } from './write.js';

export interface UploadResult {
  mode: 'standby' | 'in-place';
  driveUuid: string;
  driveName: string;
  created: boolean;
  dryRun: boolean;
  upToDate: boolean;
  claimTypeChanged: string | undefined;
  sha256: string;
  release: string | undefined;
  imageBytes: number;
  chunksTotal: number;
  chunksSkipped: number;
  chunksVerified: number;
  chunksRewritten: number;
  /** Bytes read back through the API to verify. */
  bytesRead: number;
  resumed: boolean;
  /** Standby mode: the live drive of the family before this upload (rollback target). */
  previous: { uuid: string; name: string } | undefined;
  /** Standby mode: the drive the server-side copy started from. */
  copiedFrom: string | undefined;
  /** Standby mode: drives of the family removed by retention (dry run: would be). */
  removed: { uuid: string; name: string }[];
  stats: TransferStats;
  seconds: number;
  /** Seconds per phase: find, hash, prepare, copy, send, verify, record, retention. */
  phases: Record<string, number>;
}

/** What both modes share: the options, the API, the image's hashing under way, the clock. */
export interface Session {
  o: UploadDriveOptions;
  reporter: Reporter;
  policy: RetryPolicy;
  api: DriveApi;
  stats: TransferStats;
  size: number;
  identity: string;
  /** The image's digests: its sha256 and each chunk's. */
  hashing: Promise<ImageDigests>;
  /** The image's sha256 alone, known before the chunks' digests: it names a standby drive. */
  sha256: Promise<string>;
  phases: Record<string, number>;
  phase: Phase;
  /** Where the journals go: state-dir, else the default for the caller's environment. */
  stateDir: string;
}

export function logImage(s: Session, sha256: string): void {
  s.reporter.info(
    `${path.basename(s.o.image)}: ${s.size} bytes, ${chunkCount(s.size, s.o.chunkSize)} chunks of ${formatBytes(s.o.chunkSize)}, sha256 ${sha256}`,
  );
}

export function logPlan(s: Session, plan: Plan, digests: ImageDigests): void {
  s.reporter.info(
    plan.upToDate
      ? 'the drive already holds this image: up to date'
      : `${plan.source}: ${plan.todo.length} of ${digests.chunks.length} chunks to send (${formatBytes(plan.todoBytes)} before compression)`,
  );
}

/** The result before anything is written; the modes fill in the rest. */
export function baseResult(
  s: Session,
  digests: ImageDigests,
  plan: Plan,
  drive: Pick<UploadResult, 'driveUuid' | 'driveName' | 'created' | 'claimTypeChanged'>,
): UploadResult {
  return {
    mode: s.o.mode,
    ...drive,
    dryRun: s.o.dryRun,
    upToDate: plan.upToDate,
    sha256: digests.sha256,
    release: s.o.release,
    imageBytes: s.size,
    chunksTotal: digests.chunks.length,
    chunksSkipped: digests.chunks.length - plan.todo.length,
    chunksVerified: 0,
    chunksRewritten: 0,
    bytesRead: 0,
    resumed: plan.resumed,
    previous: undefined,
    copiedFrom: undefined,
    removed: [],
    stats: s.stats,
    seconds: 0,
    phases: s.phases,
  };
}

/** What writePlan needs from the session; the caller adds the drive and the verify mode. */
export function writeContext(
  s: Session,
  digests: ImageDigests,
  plan: Plan,
): Omit<WriteContext, 'drive' | 'verify'> {
  return {
    api: s.api,
    policy: s.policy,
    stats: s.stats,
    digests,
    plan,
    image: s.o.image,
    chunkSize: s.o.chunkSize,
    concurrency: s.o.concurrency,
    stateDir: s.stateDir,
    identity: s.identity,
    release: s.o.release,
  };
}
