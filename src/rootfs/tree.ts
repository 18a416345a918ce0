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
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  open,
  readFile,
  rename,
  rm,
  symlink,
  unlink,
} from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';

export interface FileAttrs {
  mode: number;
  uid?: number;
  gid?: number;
  /** Modification time; the time of writing when omitted. */
  mtime?: Date;
}

export async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
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

function tempName(file: string): string {
  return path.join(path.dirname(file), `.diskless-tmp-${randomBytes(6).toString('hex')}`);
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
   * missing ones (owner root, `mode`). A symlink on the way is refused: following it
   * could write outside the client root (an absolute link points into the master).
   */
  async parents(rel: string, mode = 0o755): Promise<void> {
    const parts = cleanRelative(rel).split('/').slice(0, -1);
    let sofar = '';
    for (const part of parts) {
      sofar = sofar ? `${sofar}/${part}` : part;
      const st = await lstatOrUndefined(path.join(this.root, sofar));
      if (st?.isDirectory()) continue;
      if (st) {
        throw new DisklessError(
          `client root: /${sofar} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}; expected a directory to hold /${cleanRelative(rel)}`,
        );
      }
      await mkdir(path.join(this.root, sofar), { mode });
      this.managed.add(sofar);
    }
  }

  /** Makes `rel` a directory (and its parents); an existing directory is left as it is. */
  async directory(rel: string, attrs: FileAttrs = { mode: 0o755 }): Promise<void> {
    await this.parents(rel);
    const file = this.abs(rel);
    const st = await lstatOrUndefined(file);
    if (st?.isDirectory()) return;
    if (st) await unlink(file);
    await mkdir(file, { mode: attrs.mode });
    await chown(file, attrs.uid ?? 0, attrs.gid ?? 0);
    await chmod(file, attrs.mode);
    this.managed.add(cleanRelative(rel));
  }

  /** Replaces `rel` with a file holding `data` (never writes into the existing file). */
  async writeFile(rel: string, data: string | Buffer, attrs: FileAttrs): Promise<void> {
    const clean = cleanRelative(rel);
    await this.parents(clean);
    const file = path.join(this.root, clean);
    const current = await lstatOrUndefined(file);
    if (current?.isDirectory()) {
      throw new DisklessError(`client root: /${clean} is a directory; expected a file there`);
    }
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const uid = attrs.uid ?? 0;
    const gid = attrs.gid ?? 0;
    const tmp = tempName(file);
    const same = await this.identicalInPrevious(clean, body, { ...attrs, uid, gid });
    if (same) {
      await link(same, tmp);
    } else {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(body);
        await handle.chown(uid, gid);
        await handle.chmod(attrs.mode);
        if (attrs.mtime) await handle.utimes(attrs.mtime, attrs.mtime);
      } finally {
        await handle.close();
      }
    }
    await this.replaceWith(tmp, file);
    this.managed.add(clean);
  }

  /** Replaces `rel` with a symlink to `target`. */
  async symlink(rel: string, target: string): Promise<void> {
    const clean = cleanRelative(rel);
    await this.parents(clean);
    const file = path.join(this.root, clean);
    const current = await lstatOrUndefined(file);
    if (current?.isDirectory()) {
      throw new DisklessError(`client root: /${clean} is a directory; expected a symlink there`);
    }
    const tmp = tempName(file);
    await symlink(target, tmp);
    await this.replaceWith(tmp, file);
    this.managed.add(clean);
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

  private async replaceWith(tmp: string, file: string): Promise<void> {
    try {
      await rename(tmp, file);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  /** The previous release's file at `rel` when it has the same content and attributes. */
  private async identicalInPrevious(
    rel: string,
    body: Buffer,
    attrs: Required<Pick<FileAttrs, 'mode' | 'uid' | 'gid'>> & FileAttrs,
  ): Promise<string | undefined> {
    if (!this.previous) return undefined;
    const old = path.join(this.previous, rel);
    const st = await lstatOrUndefined(old);
    if (
      !st?.isFile() ||
      st.size !== body.length ||
      (st.mode & 0o7777) !== attrs.mode ||
      st.uid !== attrs.uid ||
      st.gid !== attrs.gid ||
      (attrs.mtime && Math.floor(st.mtimeMs / 1000) !== Math.floor(attrs.mtime.getTime() / 1000))
    ) {
      return undefined;
    }
    return (await readFile(old)).equals(body) ? old : undefined;
  }
}
