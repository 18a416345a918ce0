/**
 * The resume journal: a local file per drive that lists the chunks the server has
 * confirmed, appended as each write succeeds. A run killed half-way (SIGKILL, lost
 * network) leaves it behind; the next run with the same image and chunk size skips
 * what it lists. It is removed once the upload is recorded on the drive.
 *
 * It also keeps the basis the interrupted run started from (the short digests of what
 * the drive held then), since the interrupted writes leave the drive's record untrusted,
 * and what it saw of the drive: its record and write counters when the upload began, and
 * the counters once its writes were done (`seen`). A later run trusts the journal only
 * while the drive still shows those (plan.ts): a write by anyone else since, or another
 * image recorded, and it starts over.
 */
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../env.js';

export interface JournalHeader {
  version: 2;
  drive: string;
  sha256: string;
  chunkSize: number;
  /** Short digest per chunk of what the drive held when the upload began ('' = unknown). */
  basis: string[];
  /** The image the drive's record named when the upload began ('' = none). */
  record: string;
  /** The drive's write counters when the upload began, "requests:bytes" ('' = unknown). */
  writes: string;
}

export interface Journal {
  /** Journals chunk `index` as written. */
  confirm(index: number): Promise<void>;
  /** Journals the drive's write counters as they were once this run's writes were done. */
  seen(writes: string): Promise<void>;
  remove(): Promise<void>;
}

/** Write counters as the journal keeps them. */
export function countersOf(d: {
  writeRequests: number | undefined;
  writeBytes: number | undefined;
}): string {
  return d.writeRequests === undefined || d.writeBytes === undefined
    ? ''
    : `${d.writeRequests}:${d.writeBytes}`;
}

/** Where journals live when no state-dir is given: $XDG_STATE_HOME/diskless or ~/.local/state/diskless. */
export function defaultStateDir(env: Env): string {
  const base = env.XDG_STATE_HOME || path.join(env.HOME || os.homedir(), '.local', 'state');
  return path.join(base, 'diskless');
}

function journalFile(stateDir: string, drive: string): string {
  return path.join(stateDir, 'uploads', `${drive}.journal`);
}

/** The journal left by an interrupted upload of this image to this drive, if any. */
export async function findJournal(
  stateDir: string,
  drive: string,
  sha256: string,
  chunkSize: number,
): Promise<{ header: JournalHeader; done: Set<number>; seen: string | undefined } | undefined> {
  let text: string;
  try {
    text = await readFile(journalFile(stateDir, drive), 'utf8');
  } catch {
    return undefined;
  }
  const [first = '', ...lines] = text.split('\n');
  let parsed: Partial<Record<keyof JournalHeader, unknown>>;
  try {
    parsed = JSON.parse(first) as typeof parsed;
  } catch {
    return undefined;
  }
  if (
    parsed.version !== 2 ||
    typeof parsed.record !== 'string' ||
    typeof parsed.writes !== 'string' ||
    parsed.drive !== drive ||
    parsed.sha256 !== sha256 ||
    parsed.chunkSize !== chunkSize ||
    !Array.isArray(parsed.basis)
  ) {
    return undefined;
  }
  const header = parsed as JournalHeader;
  const done = new Set<number>();
  let seen: string | undefined;
  // A line cut short by a kill is ignored: only whole "index\n" lines count.
  for (const line of lines.slice(0, -1)) {
    if (/^\d+$/.test(line)) done.add(Number(line));
    const m = /^seen (\d+:\d+)$/.exec(line);
    if (m) seen = m[1];
  }
  return { header, done, seen };
}

/** Starts (or continues) the journal for this upload. */
export async function openJournal(
  stateDir: string,
  header: JournalHeader,
  resumed: boolean,
): Promise<Journal> {
  const file = journalFile(stateDir, header.drive);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  if (!resumed) await writeFile(file, `${JSON.stringify(header)}\n`, { mode: 0o600 });
  return {
    async confirm(index) {
      await appendFile(file, `${index}\n`);
    },
    async seen(writes) {
      if (writes) await appendFile(file, `seen ${writes}\n`);
    },
    remove: () => rm(file, { force: true }),
  };
}
