/**
 * A drive family: the drives standby mode writes for one `drive-name`, one per image,
 * named `<drive-name>-<first 8 hex digits of the image's sha256>`, plus a drive named
 * exactly `drive-name` (the drive an in-place upload kept rewriting, before standby
 * mode). The live drive of a family is the one servers run from: among the family's
 * drives that running servers claim, the newest upload; when no server claims one, the
 * newest upload (by the time recorded on it; drives without a record are older than any
 * with one). It is the source of the server-side copy and the rollback drive.
 */
import type { DriveInfo } from '../drive/api.js';
import { serverClaims } from '../drive/claims.js';
import { uploadedAt } from './record.js';

/** Longest drive-name in standby mode: the drive name adds 9 characters, 128 at most. */
export const MAX_FAMILY_NAME = 119;

export function standbyName(family: string, sha256: string): string {
  return `${family}-${sha256.slice(0, 8)}`;
}

/** The family a drive name belongs to: the name without a trailing `-<sha8>`. */
export function familyOf(name: string): string {
  return name.replace(/-[0-9a-f]{8}$/, '');
}

export function inFamily(drive: DriveInfo, family: string): boolean {
  if (drive.name === family) return true;
  return (
    drive.name.length === family.length + 9 &&
    drive.name.startsWith(`${family}-`) &&
    /^[0-9a-f]{8}$/.test(drive.name.slice(family.length + 1))
  );
}

/** Newest upload first: by the recorded time, then by name (stable). */
export function newestFirst(drives: readonly DriveInfo[]): DriveInfo[] {
  return [...drives].sort(
    (a, b) => uploadedAt(b).localeCompare(uploadedAt(a)) || a.name.localeCompare(b.name),
  );
}

/** The live drive of the family, leaving out `except` (the standby being written). */
export function liveDrive(family: readonly DriveInfo[], except?: string): DriveInfo | undefined {
  const others = newestFirst(family.filter((d) => d.uuid !== except));
  return others.find((d) => serverClaims(d).length > 0) ?? others[0];
}
