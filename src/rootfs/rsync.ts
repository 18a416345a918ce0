/**
 * The copy: rsync with hard links (-H), ACLs (-A), extended attributes (-X, so file
 * capabilities such as ping's survive), numeric owners, one filesystem (-x) and --delete.
 * A versioned build copies into a fresh directory with --link-dest against the previous
 * release, so unchanged files are hard links and cost nothing.
 *
 * Before copying, a dry run of the same rsync against the previous release tells whether
 * anything would change at all; paths the build itself manages (the overlay, generated
 * files, masks) are left out of that comparison, since the master's version of them never
 * reaches a client. Directory times are ignored there: /tmp's or /run's change all the time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../report.js';
import { lastLines, run, showCommand } from '../process/run.js';
import { escapePattern } from './exclusions.js';

// --modify-window=-1: compare times to the nanosecond, so a same-size edit within the
// second of the previous build is still seen.
const BASE = ['-aHAXx', '--numeric-ids', '--delete', '--modify-window=-1'];
/** rsync exit 24: some source files vanished while copying, normal on a live system. */
const VANISHED = 24;

async function withExcludeFile<T>(
  patterns: readonly string[],
  work: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-rsync-'));
  try {
    const file = path.join(dir, 'exclude');
    await writeFile(file, `${patterns.join('\n')}\n`);
    return await work(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function slash(dir: string): string {
  return dir.endsWith('/') ? dir : `${dir}/`;
}

/** Protect rules for the tool's own top-level files (in-place layout: inside the root). */
function protect(names: readonly string[]): string[] {
  return names.flatMap((n) => [`--filter=P /${n}`, `--exclude=/${n}`]);
}

/**
 * The itemized differences between what a copy would make and `dest` (empty: nothing to
 * do). `managed` paths are the build's own and are not compared.
 */
export async function differences(o: {
  source: string;
  dest: string;
  excludes: readonly string[];
  managed: readonly string[];
  toolFiles: readonly string[];
}): Promise<string[]> {
  const patterns = [...o.excludes, ...o.managed.map((m) => `/${escapePattern(m)}`)];
  return withExcludeFile(patterns, async (file) => {
    const { stdout } = await run(
      'rsync',
      [
        ...BASE,
        '--dry-run',
        '--itemize-changes',
        '--omit-dir-times',
        ...protect(o.toolFiles),
        `--exclude-from=${file}`,
        slash(o.source),
        slash(o.dest),
      ],
      { okCodes: [VANISHED] },
    );
    return stdout.split('\n').filter((line) => line.trim() !== '');
  });
}

export interface CopyStats {
  /** Regular files rsync transferred (not linked to the previous release). */
  transferred: number;
  /** Their size in bytes. */
  transferredBytes: number;
}

function statNumber(stdout: string, label: string): number {
  const m = new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(stdout);
  return m?.[1] ? Number(m[1].replace(/,/g, '')) : 0;
}

export async function copy(
  o: {
    source: string;
    dest: string;
    excludes: readonly string[];
    linkDest: string | undefined;
    /** In place: also delete what the exclusions now leave out (a newly excluded secret). */
    deleteExcluded: boolean;
    toolFiles: readonly string[];
  },
  reporter: Reporter,
): Promise<CopyStats> {
  return withExcludeFile(o.excludes, async (file) => {
    const args = [
      ...BASE,
      ...(o.deleteExcluded ? ['--delete-excluded'] : []),
      ...protect(o.toolFiles),
      `--exclude-from=${file}`,
      ...(o.linkDest ? [`--link-dest=${o.linkDest}`] : []),
      '--stats',
      slash(o.source),
      slash(o.dest),
    ];
    reporter.debug(showCommand('rsync', args));
    const { code, stdout, stderr } = await run('rsync', args, {
      okCodes: [VANISHED],
      debianPackage: 'rsync',
    });
    if (code === VANISHED) {
      reporter.warning(
        `rsync: some files vanished while they were copied (normal on a live system): ${lastLines(stderr, 1)}`,
      );
    }
    return {
      transferred: statNumber(stdout, 'Number of regular files transferred'),
      transferredBytes: statNumber(stdout, 'Total transferred file size'),
    };
  });
}
