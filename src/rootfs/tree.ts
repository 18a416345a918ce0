/**
 * Writes into a client root under construction without ever following a symlink out of
 * it and without editing any file in place.
 *
 * A release is made with `rsync --link-dest`, so most of its files are hard links shared
 * with older releases that running clients use: writing into one would change them all.
 * Every write here creates a new file beside the old one and renames it over, and when
 * the previous release holds an identical file at the same path, the new one is a hard
 * link to it instead, so an unchanged generated file costs no disk either. Every path the
 * build writes or removes after the copy is recorded as managed: change detection leaves
 * those paths to the build, not to the master.
 */
import type { Stats } from 'node:fs';
import { chmod, chown, link, mkdir, open, readFile, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lstatOrUndefined, replaceAtomic } from '../files.js';

/** What the build gives a file it writes; the owner is always root. */
export interface FileAttrs {
  mode: number;
  /** Modification time; the time of writing when omitted. */
  mtime?: Date;
}

/** Checks a path relative to a root: no absolute path, no `..`, no empty name. */
export function cleanRelative(rel: string): string {
  const trimmed = rel.replace(/^\/+/, '').replace(/\/+$/, '');
  const norm = path.posix.normalize(trimmed);
  if (norm === '.' || norm === '' || norm.startsWith('../') || norm === '..') {
    throw new DisklessError(`path ${JSON.stringify(rel)}: expected a path inside the client root`);
  }
  return norm;
}

export class ClientTree {
  /** Paths (relative, no leading /) the build wrote or removed after the copy. */
  readonly managed = new Set<string>();

  constructor(
    readonly root: string,
    /** The previous release's root, for hard links to identical files; none in place. */
    readonly previous: string | undefined,
  ) {}

  abs(rel: string): string {
    return path.join(this.root, cleanRelative(rel));
  }

  async stat(rel: string): Promise<Stats | undefined> {
    return lstatOrUndefined(this.abs(rel));
  }

  /**
   * Makes sure every parent of `rel` is a real directory inside the root, creating
   * missing ones (owner root, mode 755). A symlink on the way is refused: following it
   * could write outside the client root (an absolute link points into the master).
   */
  private async parents(clean: string): Promise<void> {
    const parts = clean.split('/').slice(0, -1);
    let sofar = '';
    for (const part of parts) {
      sofar = sofar ? `${sofar}/${part}` : part;
      const st = await lstatOrUndefined(path.join(this.root, sofar));
      if (st?.isDirectory()) continue;
      if (st) {
        throw new DisklessError(
          `client root: /${sofar} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; expected a directory to hold /${clean}`,
        );
      }
      await mkdir(path.join(this.root, sofar), { mode: 0o755 });
      this.managed.add(sofar);
    }
  }

  /** Makes `rel` a directory (and its parents); an existing directory is left as it is. */
  async directory(rel: string, mode: number): Promise<void> {
    const clean = cleanRelative(rel);
    await this.parents(clean);
    const file = path.join(this.root, clean);
    const st = await lstatOrUndefined(file);
    if (st?.isDirectory()) return;
    if (st) await unlink(file);
    await mkdir(file, { mode });
    await chown(file, 0, 0);
    await chmod(file, mode);
    this.managed.add(clean);
  }

  /** Replaces `rel` with a file holding `data` (never writes into the existing file). */
  async writeFile(rel: string, data: string | Buffer, attrs: FileAttrs): Promise<void> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    await this.replace(rel, 'a file', async (tmp, clean) => {
      const same = await this.identicalInPrevious(clean, body, attrs);
      if (same) {
        await link(same, tmp);
        return;
      }
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(body);
        await handle.chown(0, 0);
        await handle.chmod(attrs.mode);
        if (attrs.mtime) await handle.utimes(attrs.mtime, attrs.mtime);
      } finally {
        await handle.close();
      }
    });
  }

  /** Replaces `rel` with a symlink to `target`. */
  async symlink(rel: string, target: string): Promise<void> {
    await this.replace(rel, 'a symlink', (tmp) => symlink(target, tmp));
  }

  /** Removes `rel` (a whole directory tree too); unlinking never touches other releases. */
  async remove(rel: string): Promise<boolean> {
    const clean = cleanRelative(rel);
    const file = path.join(this.root, clean);
    const st = await lstatOrUndefined(file);
    if (!st) return false;
    await rm(file, { recursive: true, force: true });
    this.managed.add(clean);
    return true;
  }

  /**
   * Replaces `rel` (`what`: a file, a symlink) with what `make` creates at a temporary
   * name beside it, renamed over it: readers see the old or the new, never a mixture.
   */
  private async replace(
    rel: string,
    what: string,
    make: (tmp: string, clean: string) => Promise<void>,
  ): Promise<void> {
    const clean = cleanRelative(rel);
    await this.parents(clean);
    const file = path.join(this.root, clean);
    if ((await lstatOrUndefined(file))?.isDirectory()) {
      throw new DisklessError(`client root: /${clean} is a directory; expected ${what} there`);
    }
    await replaceAtomic(file, (tmp) => make(tmp, clean));
    this.managed.add(clean);
  }

  /** The previous release's file at `rel` when it has the same content and attributes. */
  private async identicalInPrevious(
    rel: string,
    body: Buffer,
    attrs: FileAttrs,
  ): Promise<string | undefined> {
    if (!this.previous) return undefined;
    const old = path.join(this.previous, rel);
    const st = await lstatOrUndefined(old);
    if (
      !st?.isFile() ||
      st.size !== body.length ||
      (st.mode & 0o7777) !== attrs.mode ||
      st.uid !== 0 ||
      st.gid !== 0 ||
      (attrs.mtime && Math.floor(st.mtimeMs / 1000) !== Math.floor(attrs.mtime.getTime() / 1000))
    ) {
      return undefined;
    }
    return (await readFile(old)).equals(body) ? old : undefined;
  }
}
