/**
 * What to send: every chunk of the image whose digest differs from what the drive is
 * known to hold. What it holds is known from the drive's upload record (while its
 * write counters show nobody wrote since), from the journal of an interrupted upload
 * of this same image, or, for a drive just created, from the fact that it reads as
 * zeros. When nothing is known, every chunk is sent.
 *
 * A journal is trusted only while the drive shows what it saw: the same record as when
 * that upload began, and the write counters it saw after its writes (or, killed before it
 * saw them, counters that only grew). Otherwise someone else wrote or recorded in between,
 * and the run starts over. A resumed run re-reads every chunk it does not send (upload.ts).
 */
import type { DriveInfo } from '../drive/api.js';
import { chunkLength, type ImageDigests } from './image.js';
import { countersOf, findJournal } from './journal.js';
import { shortDigest, trustedRecord, type DriveRecord } from './record.js';

export interface Plan {
  /** Chunks to send, ascending. */
  todo: number[];
  /** Image bytes in those chunks. */
  todoBytes: number;
  /** Short digest per chunk of what the drive held when this upload began ('' = unknown). */
  basis: string[];
  resumed: boolean;
  /** The drive's record says it holds this very image. */
  upToDate: boolean;
  /** Where the knowledge came from, for the log. */
  source: string;
}

function basisOf(
  drive: DriveInfo | undefined,
  record: DriveRecord | undefined,
  d: ImageDigests,
): { basis: string[]; source: string } {
  const unknown = () => d.chunks.map(() => '');
  if (!drive) {
    return {
      basis: d.chunks.map((c, i) => (d.zero[i] ? shortDigest(c) : '')),
      source: 'new drive (reads as zeros)',
    };
  }
  if (!record) {
    const why = drive.meta['diskless-sha256']
      ? 'written to since the last upload'
      : 'no upload record';
    return { basis: unknown(), source: `drive ${why}: sending every chunk` };
  }
  if (record.chunkSize !== d.chunkSize) {
    return { basis: unknown(), source: 'the record has another chunk size: sending every chunk' };
  }
  return { basis: d.chunks.map((_, i) => record.chunks[i] ?? ''), source: 'upload record' };
}

export async function planUpload(
  drive: DriveInfo | undefined,
  d: ImageDigests,
  stateDir: string,
): Promise<Plan> {
  const record = drive ? trustedRecord(drive) : undefined;
  const upToDate = !!record && record.sha256 === d.sha256 && record.size === d.size;
  let { basis, source } = basisOf(drive, record, d);
  let done = new Set<number>();
  let resumed = false;
  if (drive && !upToDate) {
    const journal = await findJournal(stateDir, drive.uuid, d.sha256, d.chunkSize);
    const stale = journal ? staleJournal(journal, drive) : undefined;
    if (journal && !stale) {
      ({ basis } = journal.header);
      done = journal.done;
      resumed = true;
      source = `resuming an interrupted upload (${done.size} chunks already confirmed)`;
    } else if (stale) {
      source = `an interrupted upload's journal no longer matches the drive (${stale}): starting over, sending every chunk`;
      basis = d.chunks.map(() => '');
    }
  }
  const todo = upToDate
    ? []
    : d.chunks.flatMap((digest, i) => (done.has(i) || basis[i] === shortDigest(digest) ? [] : [i]));
  const todoBytes = todo.reduce((sum, i) => sum + chunkLength(i, d.size, d.chunkSize), 0);
  return { todo, todoBytes, basis, resumed, upToDate, source };
}

/** Why a journal no longer describes the drive, or undefined while it does. */
function staleJournal(
  journal: { header: { record: string; writes: string }; seen: string | undefined },
  drive: DriveInfo,
): string | undefined {
  const record = drive.meta['diskless-sha256'] ?? '';
  if (record !== journal.header.record) return 'another image was recorded on it since';
  const now = countersOf(drive);
  if (!now) return 'the API reports no write counters';
  if (journal.seen !== undefined) {
    return now === journal.seen ? undefined : 'it was written to since';
  }
  const [r0 = 0, b0 = 0] = journal.header.writes.split(':').map(Number);
  const [r1 = 0, b1 = 0] = now.split(':').map(Number);
  return journal.header.writes && (r1 < r0 || b1 < b0) ? 'its write counters went back' : undefined;
}

/**
 * The plan for a drive this run has just made (standby mode): a server-side copy of a
 * drive whose record is trusted holds that record's chunks; a new drive that nothing was
 * copied onto reads as zeros; a drive whose content is unknown gets every chunk.
 */
export function planFresh(
  d: ImageDigests,
  holds: { copied: DriveRecord } | { zeros: true } | { unknown: true },
): Plan {
  let basis: string[];
  let source: string;
  if ('copied' in holds) {
    basis = d.chunks.map((_, i) => holds.copied.chunks[i] ?? '');
    source = 'server-side copy of the live drive';
  } else if ('zeros' in holds) {
    basis = d.chunks.map((c, i) => (d.zero[i] ? shortDigest(c) : ''));
    source = 'new drive (reads as zeros)';
  } else {
    basis = d.chunks.map(() => '');
    source = 'drive of unknown content: sending every chunk';
  }
  const todo = d.chunks.flatMap((digest, i) => (basis[i] === shortDigest(digest) ? [] : [i]));
  const todoBytes = todo.reduce((sum, i) => sum + chunkLength(i, d.size, d.chunkSize), 0);
  return { todo, todoBytes, basis, resumed: false, upToDate: false, source };
}
