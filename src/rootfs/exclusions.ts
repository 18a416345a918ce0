/**
 * What the copy leaves out of the client root. Patterns are rsync's: a leading / anchors
 * at the source root, `dir/*` keeps the directory (a mount point) but not its content, and
 * a pattern without a / matches a name at any depth.
 */
import path from 'node:path';
import type { Env } from '../env.js';
import { SECRET_EXCLUDES } from './scrub.js';

/** The 2011 list, in today's form, and what a modern Debian adds to it. */
export const SYSTEM_EXCLUDES: readonly string[] = [
  // Kernel and virtual filesystems, runtime state: mount points stay, content goes.
  '/proc/*',
  '/sys/*',
  '/dev/*',
  '/run/*',
  '/tmp/*',
  // tmpfs on the client, filled at boot from the skeleton (var-skeleton.ts).
  '/var/*',
  // Mounted over NFS or private to the master.
  '/home/*',
  '/root/*',
  '/boot/*',
  '/mnt/*',
  '/media/*',
  // Kernel and initrd links: build-iso picks the kernel, the client never sees them.
  '/vmlinuz',
  '/vmlinuz.old',
  '/initrd.img',
  '/initrd.img.old',
  // Swap files.
  '/swapfile',
  '/swap.img',
  'lost+found',
  // 2011: regenerated or per machine.
  '/etc/mtab',
  '/etc/network/run',
  // The GitHub Actions runner's installation and work directories, wherever installed.
  '/opt/actions-runner',
  '/actions-runner',
  // This tool's own state and caches.
  '/var/lib/diskless',
  '/var/cache/diskless*',
];

/** What /usr contributes when the client mounts it read-only from the master. */
export const USR_EXCLUDE = '/usr/*';

/**
 * `file` as an anchored pattern when it lies inside `source` (excluding it then),
 * undefined when it is elsewhere.
 */
export function anchoredInside(source: string, file: string): string | undefined {
  const rel = path.relative(source, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return `/${escapePattern(rel.split(path.sep).join('/'))}`;
}

/** Escapes rsync wildcards in a literal path. */
export function escapePattern(literal: string): string {
  return /[*?[]/.test(literal) ? literal.replace(/[\\*?[]/g, (c) => `\\${c}`) : literal;
}

export interface ExclusionContext {
  source: string;
  target: string;
  stateDir: string;
  copyUsr: boolean;
  extra: readonly string[];
  /** The environment, for the runner's own directories. */
  env: Env;
}

/** Every exclude pattern of a build, built-in first, then the `exclude` input's. */
export function exclusions(c: ExclusionContext): string[] {
  const runnerDirs = [
    c.env.RUNNER_TEMP,
    c.env.RUNNER_TOOL_CACHE,
    c.env.RUNNER_WORKSPACE,
    c.env.GITHUB_WORKSPACE,
  ].filter((d): d is string => typeof d === 'string' && path.isAbsolute(d));
  // RUNNER_WORKSPACE is <runner>/_work/<repository>: the runner's installation too.
  const workspace = c.env.RUNNER_WORKSPACE;
  if (
    workspace &&
    path.isAbsolute(workspace) &&
    path.basename(path.dirname(workspace)) === '_work'
  ) {
    runnerDirs.push(path.dirname(path.dirname(workspace)));
  }
  const local = [c.target, c.stateDir, ...runnerDirs]
    .map((d) => anchoredInside(c.source, d))
    .filter((p): p is string => p !== undefined);
  return [
    ...new Set([
      ...SYSTEM_EXCLUDES,
      ...(c.copyUsr ? [] : [USR_EXCLUDE]),
      ...SECRET_EXCLUDES,
      ...local,
      ...c.extra,
    ]),
  ];
}
