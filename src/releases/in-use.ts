/**
 * Which releases are in use: the one place that says so, for retention and the summary.
 * A release is in use while any signal names it:
 *   current   `<target>/current` points at it (new clients mount it)
 *   ledger    an upload target's drive boots an ISO pinned to it (ledger.ts), or the
 *             target's rollout saw a server run it, boot it next, or keep it for a rollback
 *   mounted   the NFS server's mount table names it (rmtab lines, or `showmount -a` output)
 *   kept      the operator named it (input keep-releases)
 * A signal that cannot be read (a damaged ledger file, an unreadable mount table that was
 * asked for) makes the answer unsafe: retention then removes nothing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { readLedger } from './ledger.js';
import { CURRENT, RELEASES } from './layout.js';

export interface InUse {
  /** Release id -> why it is in use. */
  reasons: Map<string, string[]>;
  /** Signals that could not be read; when any, nothing may be removed. */
  problems: string[];
  /** Every release is in use (the whole target or releases/ is mounted). */
  all?: string;
}

/** The exported path of each `host:/path[:0x...]` line (rmtab, `showmount -a`). */
export function mountedPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const at = line.indexOf(':/');
    if (at < 0) continue;
    out.push(
      line
        .slice(at + 1)
        .replace(/:0x[0-9a-f]+\s*$/i, '')
        .trim(),
    );
  }
  return out;
}

/** What a mounted path means for `target`: one release, every release, or nothing. */
export function releaseOfMount(
  target: string,
  mounted: string,
  current: string | undefined,
): { id?: string; all?: boolean } {
  const rel = path.relative(target, path.resolve(mounted));
  if (rel.startsWith('..') || path.isAbsolute(rel)) return {};
  const [first = '', second] = rel.split(path.sep);
  if (rel === '' || (first === RELEASES && second === undefined)) return { all: true };
  if (first === CURRENT) return current ? { id: current } : {};
  if (first === RELEASES && second !== undefined) return { id: second };
  return {};
}

export async function releasesInUse(o: {
  target: string;
  current: string | undefined;
  /** Mount-table files; a missing file is no signal (no NFS server of that kind here). */
  mountTables: readonly string[];
  keepReleases: readonly string[];
}): Promise<InUse> {
  const reasons = new Map<string, string[]>();
  const problems: string[] = [];
  let all: string | undefined;
  const add = (id: string, why: string): void => {
    const list = reasons.get(id) ?? [];
    if (!list.includes(why)) list.push(why);
    reasons.set(id, list);
  };
  if (o.current) add(o.current, 'current');

  const ledger = await readLedger(o.target);
  for (const e of ledger.entries) {
    add(e.release, `ledger: ${e.target}`);
    for (const a of e.also ?? []) add(a.release, `ledger: ${e.target}: ${a.why}`);
  }
  for (const file of ledger.unreadable) problems.push(`${file} is not a ledger entry`);

  for (const table of o.mountTables) {
    let text: string;
    try {
      text = await readFile(table, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      problems.push(`${table}: ${errorMessage(error)}`);
      continue;
    }
    for (const mounted of mountedPaths(text)) {
      const r = releaseOfMount(o.target, mounted, o.current);
      if (r.all) all = `${mounted} is mounted (${table})`;
      if (r.id) add(r.id, `mounted: ${table}`);
    }
  }
  for (const id of o.keepReleases) add(id, 'keep-releases');
  return all ? { reasons, problems, all } : { reasons, problems };
}
