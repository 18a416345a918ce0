/**
 * Refusals: every check that stops a build which would destroy data runs here, before
 * anything is written. A target this tool made carries a marker file, so a non-empty
 * directory without one (someone's data, a mistyped path) is never synced over.
 */
import { lstat, mkdir, readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError, inputError } from '../errors.js';
import { lstatOrUndefined, writeFileAtomic } from '../files.js';
import { CURRENT } from '../releases/layout.js';

export type Layout = 'versioned' | 'in-place';

export const MARKER = '.diskless-target';
export const LOCK = '.diskless-lock';
/** Top-level names of the tool's own files in a target (in-place: inside the client root). */
export const TOOL_FILES = [MARKER, LOCK] as const;

export interface Marker {
  tool: 'diskless-node';
  layout: Layout;
  created: string;
  /** In-place layout: what the last build did (versioned keeps this per release). */
  last?: unknown;
}

/** Resolves symlinks of the longest existing prefix of `p` (the rest may not exist yet). */
async function resolveLoosely(p: string): Promise<string> {
  const rest: string[] = [];
  let at = path.resolve(p);
  for (;;) {
    try {
      return path.join(await realpath(at), ...rest.reverse());
    } catch {
      const parent = path.dirname(at);
      if (parent === at) return path.resolve(p);
      rest.push(path.basename(at));
      at = parent;
    }
  }
}

function inside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

export async function readMarker(target: string): Promise<Marker | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(target, MARKER), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const m = JSON.parse(text) as Partial<Marker>;
    if (m.tool === 'diskless-node' && (m.layout === 'versioned' || m.layout === 'in-place')) {
      return m as Marker;
    }
  } catch {
    // fall through
  }
  throw new DisklessError(
    `Input "target": ${path.join(target, MARKER)} is not a diskless-node marker; expected the file this tool writes (nothing was changed)`,
  );
}

export interface Checked {
  source: string;
  target: string;
  marker: Marker | undefined;
}

/** Every refusal; throws a DisklessError naming the input, and changes nothing. */
export async function checkPaths(o: {
  source: string;
  target: string;
  template: string | undefined;
  layout: Layout;
}): Promise<Checked> {
  if (!o.target || !path.isAbsolute(o.target)) {
    throw inputError('target', o.target, 'an absolute path (nothing was changed)');
  }
  if (!path.isAbsolute(o.source)) {
    throw inputError('source', o.source, 'an absolute path');
  }
  const sourceStat = await lstatOrUndefined(o.source);
  const source = sourceStat ? await realpath(o.source) : o.source;
  if (!(await lstatOrUndefined(source))?.isDirectory()) {
    throw inputError(
      'source',
      o.source,
      `an existing directory (${sourceStat ? 'it is not a directory' : 'it does not exist'})`,
    );
  }
  const target = await resolveLoosely(o.target);
  if (target === '/') {
    throw inputError('target', o.target, 'a directory other than /');
  }
  if (target === source) {
    throw inputError(
      'target',
      o.target,
      `a directory other than the source ${JSON.stringify(source)}`,
    );
  }
  if (inside(target, source)) {
    throw inputError(
      'target',
      o.target,
      `a directory that does not contain the source ${JSON.stringify(source)} (--delete would remove it)`,
    );
  }
  if (o.template !== undefined) {
    const st = await lstatOrUndefined(o.template);
    if (!st?.isDirectory()) {
      throw inputError(
        'template',
        o.template,
        `an existing directory (${st ? 'it is not a directory' : 'it does not exist'})`,
      );
    }
  }
  const targetStat = await lstatOrUndefined(target);
  let marker: Marker | undefined;
  if (targetStat) {
    if (!targetStat.isDirectory()) {
      throw inputError('target', o.target, 'a directory, and it is a file (nothing was changed)');
    }
    marker = await readMarker(target);
    const names = await readdir(target);
    if (!marker && names.length > 0) {
      throw inputError(
        'target',
        o.target,
        `an empty directory or one made by diskless-node, and it holds ${names.length} entries but no ${MARKER} marker (nothing was changed)`,
      );
    }
    if (marker && marker.layout !== o.layout) {
      throw new DisklessError(
        `Input "layout": got "${o.layout}"; expected "${marker.layout}", the layout ${JSON.stringify(o.target)} was made with (nothing was changed)`,
      );
    }
    if (marker?.layout === 'versioned') {
      const link = path.join(target, CURRENT);
      const current = await lstatOrUndefined(link);
      if (current && !current.isSymbolicLink()) {
        throw new DisklessError(
          `Input "target": ${link} is not a symlink; expected the link this tool switches (nothing was changed)`,
        );
      }
    }
  }
  return { source, target, marker };
}

/** Creates the target and its marker (first build only). */
export async function claimTarget(target: string, layout: Layout): Promise<void> {
  await mkdir(target, { recursive: true, mode: 0o755 });
  if (await readMarker(target)) return;
  await writeMarker(target, { tool: 'diskless-node', layout, created: new Date().toISOString() });
}

export async function writeMarker(target: string, marker: Marker): Promise<void> {
  await writeFileAtomic(path.join(target, MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

/** The lock file of a target (created if missing; never holds data). */
export async function lockFile(target: string): Promise<string> {
  const file = path.join(target, LOCK);
  if (!(await lstatOrUndefined(file))) await writeFile(file, '', { mode: 0o644, flag: 'a' });
  const st = await lstat(file);
  if (!st.isFile()) {
    throw new DisklessError(`${file}: expected the build lock file, and it is not a regular file`);
  }
  return file;
}
