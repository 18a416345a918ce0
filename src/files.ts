/** Small file helpers shared by the steps: digests, atomic writes, existence, optional reads. */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A temporary name beside `file`, hidden, unique to this process and call. */
export function tempBeside(file: string, tag = 'tmp'): string {
  const nonce = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return path.join(path.dirname(file), `.${path.basename(file)}.${tag}-${nonce}`);
}

/**
 * Puts `file` in place through a temporary name beside it: `make` creates the temporary
 * (a file, a symlink, a copy), then a rename replaces `file`, so readers see the old or
 * the new, never half of it. A failure leaves no temporary behind.
 */
export async function replaceAtomic(
  file: string,
  make: (tmp: string) => Promise<void>,
): Promise<void> {
  const tmp = tempBeside(file);
  try {
    await make(tmp);
    await rename(tmp, file);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** Writes `file` through a temporary file and a rename: readers see the old or the new. */
export async function writeFileAtomic(
  file: string,
  data: string | Buffer,
  mode = 0o644,
): Promise<void> {
  await replaceAtomic(file, (tmp) => writeFile(tmp, data, { mode }));
}

export async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}

export function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function missing(error: unknown): undefined {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
  throw error;
}

/** lstat(2), or undefined when nothing is there (any other error is thrown). */
export function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  return lstat(file).catch(missing);
}

/** stat(2) through symlinks, or undefined when nothing is there (or the link dangles). */
export function statOrUndefined(file: string): Promise<Stats | undefined> {
  return stat(file).catch(missing);
}

/** The file's text, or undefined when it does not exist (any other error is thrown). */
export function readTextIfExists(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').catch(missing);
}
