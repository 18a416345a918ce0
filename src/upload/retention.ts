/**
 * Retention of a drive family after a standby upload: the `keep-drives` newest drives
 * stay (the one just written counts), and so do, whatever their age, the previous live
 * drive (the rollback target) and every drive a running server or a copy has claimed.
 * The rest are removed. A removal the API refuses (a server claimed the drive meanwhile)
 * is a warning: the upload itself succeeded.
 */
import type { DriveApi, DriveInfo } from '../drive/api.js';
import { errorMessage } from '../errors.js';
import type { Reporter } from '../report.js';
import { claimsOf } from '../drive/claims.js';
import { newestFirst } from './family.js';

export interface Verdict {
  drive: DriveInfo;
  /** Why it stays; undefined: it goes. */
  keep: string | undefined;
}

export function judgeFamily(
  family: readonly DriveInfo[],
  o: { current: string; previous: string | undefined; keep: number },
): Verdict[] {
  // The drive just written ranks first whatever its record says (a dry run's is not yet).
  const sorted = newestFirst(family);
  const ranked = [
    ...sorted.filter((d) => d.uuid === o.current),
    ...sorted.filter((d) => d.uuid !== o.current),
  ];
  return ranked.map((drive, rank) => {
    const why = [
      drive.uuid === o.current ? 'the drive just written' : '',
      drive.uuid === o.previous ? 'the previous drive (rollback)' : '',
      claimsOf(drive).length > 0 ? `claimed (${drive.claimed ?? ''})` : '',
      drive.imaging ? 'being imaged' : '',
      rank < o.keep ? `one of the ${o.keep} newest` : '',
    ].filter((w) => w !== '');
    return { drive, keep: why.length > 0 ? why.join(', ') : undefined };
  });
}

/** Removes what `judgeFamily` lets go (or only says so in a dry run); returns the UUIDs removed. */
export async function applyRetention(
  api: DriveApi,
  verdicts: readonly Verdict[],
  reporter: Reporter,
  dryRun: boolean,
): Promise<DriveInfo[]> {
  const removed: DriveInfo[] = [];
  for (const { drive, keep } of verdicts) {
    const label = `drive ${drive.uuid} "${drive.name}"`;
    if (keep) {
      reporter.info(`keep ${label}: ${keep}`);
      continue;
    }
    if (dryRun) {
      reporter.info(`dry run: would remove ${label} (older than the keep-drives newest)`);
      removed.push(drive);
      continue;
    }
    try {
      await api.destroy(drive.uuid);
      reporter.info(`removed ${label} (older than the keep-drives newest, unclaimed)`);
      removed.push(drive);
    } catch (error) {
      reporter.warning(`could not remove ${label}: ${errorMessage(error)}; it stays`);
    }
  }
  return removed;
}
