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
 * A file whose only difference is its modification time (ldconfig, package scripts touch
 * files without changing them) is compared by content in a second dry run over just those
 * files (-c): a new release comes only from a change of content, owner, mode, ACLs or
 * xattrs, and the cost of reading is paid for the touched files alone.
 */
import type { Reporter } from '../report.js';
import { lastLines, run, showCommand } from '../process/run.js';
import { escapePattern } from './exclusions.js';

// --modify-window=-1: compare times to the nanosecond, so a same-size edit within the
// second of the previous build is still seen.
const BASE = ['-aHAXx', '--numeric-ids', '--delete', '--modify-window=-1'];
/** rsync exit 24: some source files vanished while copying, normal on a live system. */
const VANISHED = 24;

/**
 * The exclusion patterns as rsync reads them with --exclude-from=- (on its stdin: no
 * temporary file to write and remove on the way to the comparison).
 */
function exclusionList(patterns: readonly string[]): string {
  return `${patterns.join('\n')}\n`;
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
  const { stdout } = await run(
    'rsync',
    [
      ...BASE,
      '--dry-run',
      '--itemize-changes',
      '--omit-dir-times',
      ...protect(o.toolFiles),
      '--exclude-from=-',
      slash(o.source),
      slash(o.dest),
    ],
    { okCodes: [VANISHED], input: exclusionList(patterns) },
  );
  // A symlink's content is its target, which rsync compares itself: its time alone is
  // no change. A file's time alone sends it to the content comparison.
  const lines = stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !LINK_TIME_ONLY.test(line));
  const touched = lines.filter((line) => FILE_TIME_ONLY.test(line));
  if (touched.length === 0) return lines;
  const changed = await contentDiffers(o.source, o.dest, touched.map(itemPath));
  return lines.filter((line) => !FILE_TIME_ONLY.test(line) || changed.has(itemPath(line)));
}

/** Itemized lines (YXcstpoguax) whose only difference is the modification time. */
const FILE_TIME_ONLY = /^[>.]f\.\.[tT]\.{6} /;
const LINK_TIME_ONLY = /^[.c]L\.\.[tT]\.{6} /;

/** The path of an itemized line, with rsync's \#ooo escapes (one byte each) undone. */
export function itemPath(line: string): string {
  const parts = line.slice(12).split(/\\#([0-7]{3})/);
  // split with a capture group: text, byte, text, byte, ..., text
  const bytes = parts.map((part, i) =>
    i % 2 === 1 ? Buffer.from([parseInt(part, 8)]) : Buffer.from(part, 'utf8'),
  );
  return Buffer.concat(bytes).toString('utf8');
}

/** Which of `files` (relative paths) differ in content between `source` and `dest`. */
async function contentDiffers(
  source: string,
  dest: string,
  files: readonly string[],
): Promise<Set<string>> {
  const { stdout } = await run(
    'rsync',
    [
      ...BASE.filter((arg) => arg !== '--delete'),
      '--dry-run',
      '--itemize-changes',
      '--checksum',
      '--from0',
      '--files-from=-',
      slash(source),
      slash(dest),
    ],
    { okCodes: [VANISHED], input: `${files.join('\0')}\0` },
  );
  // With -c an equal file only gets its time set ('.' first): a transfer means content.
  return new Set(
    stdout
      .split('\n')
      .filter((line) => /^[>c]/.test(line))
      .map(itemPath),
  );
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
  const args = [
    ...BASE,
    ...(o.deleteExcluded ? ['--delete-excluded'] : []),
    ...protect(o.toolFiles),
    '--exclude-from=-',
    ...(o.linkDest ? [`--link-dest=${o.linkDest}`] : []),
    '--stats',
    slash(o.source),
    slash(o.dest),
  ];
  reporter.debug(showCommand('rsync', args));
  const { code, stdout, stderr } = await run('rsync', args, {
    okCodes: [VANISHED],
    debianPackage: 'rsync',
    input: exclusionList(o.excludes),
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
}
