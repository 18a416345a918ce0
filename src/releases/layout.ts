/**
 * The versioned layout: `<target>/releases/<id>/` holds one immutable client root each,
 * `<target>/releases/<id>.json` what the build knew about it, `<target>/releases/<id>.iso`
 * (with `.sha256`) the boot image the workflow built for it, and `<target>/current` is a
 * relative symlink to the promoted release, switched atomically (a new link renamed over
 * the old one) so a client mounting it sees either release, never a mixture. A release is
 * built in `releases/.partial-<id>` and renamed into place only when complete; its metadata
 * is written before the rename, so a release directory with metadata is complete.
 */
import { readdir, readFile, readlink, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lstatOrUndefined, replaceAtomic, writeFileAtomic } from '../files.js';
import type { Reporter } from '../report.js';

export const RELEASES = 'releases';
export const CURRENT = 'current';
export const PARTIAL = '.partial-';
/** A release id: the UTC time of its build, with a counter when two fall in one second. */
export const RELEASE_ID = /^\d{8}T\d{6}Z(?:-\d+)?$/;

export interface ReleaseMeta {
  id: string;
  created: string;
  previous: string | undefined;
  /** Hash of everything besides the master's files that went into the release. */
  fingerprint: string;
  /** Paths the build wrote or removed after the copy (relative to the root). */
  managed: string[];
  files: number;
  bytes: number;
}

export function isReleaseId(name: string): boolean {
  return RELEASE_ID.test(name);
}

/**
 * A new id from the clock that sorts after every existing one (`existing` oldest first),
 * even within the same second or when the clock went back: pruning goes by this order.
 */
export function newReleaseId(now: Date, existing: readonly string[]): string {
  const base = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const latest = existing[existing.length - 1];
  if (latest === undefined || compareIds(base, latest) > 0) return base;
  const [date = base, n = '0'] = latest.split('-');
  return `${date}-${Number(n) + 1}`;
}

/** Release ids, oldest first (the id's order is the build order). */
export async function listReleases(target: string): Promise<string[]> {
  const entries = await readdir(path.join(target, RELEASES), { withFileTypes: true }).catch(
    () => [],
  );
  return entries
    .filter((e) => e.isDirectory() && isReleaseId(e.name))
    .map((e) => e.name)
    .sort(compareIds);
}

/** Build order of two ids: negative when `a` is older. */
export function compareIds(a: string, b: string): number {
  const [da = '', na = '0'] = a.split('-');
  const [db = '', nb = '0'] = b.split('-');
  return da === db ? Number(na) - Number(nb) : da < db ? -1 : 1;
}

/** The id `current` points at, if any. */
export async function currentId(target: string): Promise<string | undefined> {
  let link: string;
  try {
    link = await readlink(path.join(target, CURRENT));
  } catch {
    return undefined;
  }
  const id = path.basename(link);
  if (
    !isReleaseId(id) ||
    !(await lstatOrUndefined(path.join(target, RELEASES, id)))?.isDirectory()
  ) {
    throw new DisklessError(
      `${path.join(target, CURRENT)} points at ${JSON.stringify(link)}; expected a release under ${RELEASES}/ (fix or remove the link)`,
    );
  }
  return id;
}

export async function readMeta(target: string, id: string): Promise<ReleaseMeta | undefined> {
  try {
    return JSON.parse(
      await readFile(path.join(target, RELEASES, `${id}.json`), 'utf8'),
    ) as ReleaseMeta;
  } catch {
    return undefined;
  }
}

export async function writeMeta(target: string, meta: ReleaseMeta): Promise<void> {
  await writeFileAtomic(
    path.join(target, RELEASES, `${meta.id}.json`),
    `${JSON.stringify(meta, null, 2)}\n`,
  );
}

/** A release that a build finished: its directory and its metadata are both there. */
export async function isComplete(target: string, id: string): Promise<boolean> {
  return (
    isReleaseId(id) &&
    (await lstatOrUndefined(path.join(target, RELEASES, id)))?.isDirectory() === true &&
    (await readMeta(target, id)) !== undefined
  );
}

/** Removes a release: its root, its metadata and its kept ISO. */
export async function removeRelease(target: string, id: string): Promise<void> {
  await rm(path.join(target, RELEASES, id), { recursive: true, force: true });
  for (const file of [`${id}.json`, `${id}.iso`, `${id}.iso.sha256`]) {
    await rm(path.join(target, RELEASES, file), { force: true });
  }
}

/** Points `current` at `id` atomically. */
export async function switchCurrent(target: string, id: string): Promise<void> {
  await replaceAtomic(path.join(target, CURRENT), (tmp) => symlink(`${RELEASES}/${id}`, tmp));
}

/** Removes builds that died half-way (their directories were never published). */
export async function removePartials(target: string, reporter: Reporter): Promise<void> {
  const names = await readdir(path.join(target, RELEASES)).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(PARTIAL))) {
    reporter.info(`Removing ${RELEASES}/${name}, left by a build that did not finish`);
    await rm(path.join(target, RELEASES, name), { recursive: true, force: true });
  }
}
