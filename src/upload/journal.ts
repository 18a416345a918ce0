/**
 * The resume journal: a local file per drive that lists the chunks the server has
 * confirmed, appended as each write succeeds. A run killed half-way (SIGKILL, lost
 * network) leaves it behind; the next run with the same image and chunk size skips
 * what it lists. It is removed once the upload is recorded on the drive.
 *
 * It also keeps the basis the interrupted run started from (the short digests of what
 * the drive held then), since the interrupted writes leave the drive's record untrusted.
 */
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface JournalHeader {
  version: 1;
  drive: string;
  sha256: string;
  chunkSize: number;
  /** Short digest per chunk of what the drive held when the upload began ('' = unknown). */
  basis: string[];
}

export interface Journal {
  /** Journals chunk `index` as written. */
  confirm(index: number): Promise<void>;
  remove(): Promise<void>;
}

/** Where journals live when no state-dir is given: $XDG_STATE_HOME/diskless or ~/.local/state/diskless. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
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
): Promise<{ header: JournalHeader; done: Set<number> } | undefined> {
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
    parsed.version !== 1 ||
    parsed.drive !== drive ||
    parsed.sha256 !== sha256 ||
    parsed.chunkSize !== chunkSize ||
    !Array.isArray(parsed.basis)
  ) {
    return undefined;
  }
  const header = parsed as JournalHeader;
  const done = new Set<number>();
  // A line cut short by a kill is ignored: only whole "index\n" lines count.
  for (const line of lines.slice(0, -1)) if (/^\d+$/.test(line)) done.add(Number(line));
  return { header, done };
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
    remove: () => rm(file, { force: true }),
  };
}
