/**
 * The upload ledger: what each upload target (a zone's drive) was last given, one file per
 * target, `<target>/ledger/<name>.json`, written after a successful upload. Servers boot
 * the release their drive's ISO names, so every release in the ledger is in use. The
 * workflow's report job writes these files with jq (same fields), from the upload leg or,
 * when the target had a rollout, from the rollout's `ledger` output (which adds `also`);
 * `recordUpload` is the library's writer for everything else.
 */
import { readdir, readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../files.js';
import { isReleaseId } from './layout.js';

export const LEDGER = 'ledger';
/** An upload target's name, as the workflow's targets input allows it. */
const TARGET_NAME = /^[A-Za-z0-9_.-]{1,40}$/;

export interface LedgerEntry {
  /** The upload target's name (zone or account). */
  target: string;
  /** The release the ISO on its drive boots. */
  release: string;
  /** SHA-256 of that ISO. */
  sha256: string;
  drive?: string;
  time: string;
  /**
   * Other releases this target's servers still need, written by the rollout from what the
   * cloud says: a drive a running server has claimed (a server started before it was
   * repointed runs the old image until its next boot), a drive a server boots next, the
   * previous drive kept for a rollback. Each with the reason, for the summary.
   */
  also?: { release: string; why: string }[];
}

export async function recordUpload(target: string, entry: LedgerEntry): Promise<void> {
  if (
    !TARGET_NAME.test(entry.target) ||
    !isReleaseId(entry.release) ||
    !(entry.also ?? []).every((a) => isReleaseId(a.release))
  ) {
    throw new Error(`not a ledger entry: ${JSON.stringify(entry)}`);
  }
  const dir = path.join(target, LEDGER);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(
    path.join(dir, `${entry.target}.json`),
    `${JSON.stringify(entry, null, 2)}\n`,
  );
}

/**
 * Every readable entry. A file that is not an entry is reported in `unreadable`, never
 * taken as "nothing in use": retention then keeps everything (see in-use.ts).
 */
export async function readLedger(
  target: string,
): Promise<{ entries: LedgerEntry[]; unreadable: string[] }> {
  const dir = path.join(target, LEDGER);
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries: LedgerEntry[] = [];
  const unreadable: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    try {
      const e = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Partial<LedgerEntry>;
      const also = e.also ?? [];
      if (
        typeof e.target === 'string' &&
        typeof e.release === 'string' &&
        isReleaseId(e.release) &&
        Array.isArray(also) &&
        also.every((a) => typeof a.release === 'string' && isReleaseId(a.release))
      ) {
        entries.push(e as LedgerEntry);
        continue;
      }
    } catch {
      // reported below
    }
    unreadable.push(path.join(dir, name));
  }
  return { entries, unreadable };
}
