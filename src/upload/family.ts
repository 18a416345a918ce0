/**
 * A drive family: the drives standby mode writes for one `drive-name`, one per image,
 * named `<drive-name>-<first 8 hex digits of the image's sha256>`, plus a drive named
 * exactly `drive-name` (the drive an in-place upload kept rewriting, before standby
 * mode). The live drive of a family is the one servers run from: among the family's
 * drives that running servers claim, the newest upload; when no server claims one, the
 * newest upload (by the time recorded on it; drives without a record are older than any
 * with one). It is the source of the server-side copy and the rollback drive.
 */
import type { DriveApi, DriveInfo } from '../drive/api.js';
import { uploadedAt } from './record.js';

/** Longest drive-name in standby mode: the drive name adds 9 characters, 128 at most. */
export const MAX_FAMILY_NAME = 119;

export function standbyName(family: string, sha256: string): string {
  return `${family}-${sha256.slice(0, 8)}`;
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

/**
 * The claims on a drive, one per holder: a server's `<user>:guest:<server>:<device>` (or
 * a bare server UUID, as the Drive API page describes them), or a copy's
 * `<user>:imaging:<drive>`.
 */
export function claimsOf(d: DriveInfo): string[] {
  return (d.claimed ?? '').split(/\s+/).filter((c) => c !== '');
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** UUIDs of the servers claiming the drive (copies in progress left out). */
export function serverClaims(d: DriveInfo): string[] {
  const servers = claimsOf(d).flatMap((c) => {
    if (/:imaging:/.test(c)) return [];
    const guest = /:guest:([^:]+)/.exec(c);
    if (guest?.[1]) return [guest[1]];
    const bare = UUID.exec(c);
    return bare ? [bare[0]] : [];
  });
  return [...new Set(servers)];
}

/**
 * Who holds the drive, for an error line: `server <uuid> "<name>"` per server (names
 * from servers/info, best effort), and the copies in progress.
 */
export async function describeHolders(api: DriveApi, d: DriveInfo): Promise<string> {
  const held = serverClaims(d);
  const names = new Map<string, string>();
  if (held.length > 0) {
    const all = await api.servers().catch(() => []);
    for (const s of all) names.set(s.uuid, s.name);
  }
  const parts = held.map((uuid) => {
    const name = names.get(uuid);
    return `server ${uuid}${name ? ` "${name}"` : ''}`;
  });
  if (claimsOf(d).some((c) => /:imaging:/.test(c))) parts.push('a server-side copy (imaging)');
  return parts.length > 0 ? parts.join(', ') : (d.claimed ?? 'unknown holders');
}
