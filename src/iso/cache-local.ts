/**
 * The initramfs cache in a local directory on the self-hosted master.
 *
 *   <dir>/<key>.img    the image
 *   <dir>/<key>.json   { key, sha256, size, kernelVersion, created }, written after the image
 *
 * Both are written through a temporary file and a rename, so a reader never sees half an
 * entry. An entry is used only when its image has the recorded size and SHA-256; anything
 * else is removed and rebuilt. A hit refreshes the entry's time; after a store, entries
 * unused for longer than the maximum age go, then the least recently used until the
 * directory fits the maximum size (the entry just stored always stays). Pruning touches
 * only what this cache wrote: records that are its JSON, images named like its keys, and
 * its own temporary files, so a cache-dir shared with anything else loses nothing else.
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import type { Reporter } from '../report.js';
import {
  replaceAtomic,
  sha256File,
  statOrUndefined,
  tempBeside,
  writeFileAtomic,
} from '../files.js';

export interface EntryMeta {
  key: string;
  sha256: string;
  size: number;
  kernelVersion: string;
  created: string;
}

export type Restored = { hit: true; meta: EntryMeta } | { hit: false };

export interface InitramfsCache {
  readonly name: string;
  /** Copies a valid entry to `dest`; a corrupt one is reported, removed and missed. */
  restore(key: string, dest: string, reporter: Reporter): Promise<Restored>;
  /** Stores `file` under `key`; failures are warnings, never build failures. */
  save(key: string, file: string, meta: EntryMeta, reporter: Reporter): Promise<void>;
}

const TEMP_MAX_AGE_MS = 60 * 60 * 1000;
/** The start of every key cacheKey makes: leftover images and temporaries are recognised by it. */
const KEY_PREFIX = 'diskless-initramfs-';

/** The record of `key` when `file` is one this cache wrote, else undefined. */
async function ownRecord(file: string, key: string): Promise<EntryMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(file, 'utf8')) as Partial<EntryMeta>;
    return meta.key === key && typeof meta.sha256 === 'string' && typeof meta.size === 'number'
      ? (meta as EntryMeta)
      : undefined;
  } catch {
    return undefined;
  }
}

export class LocalCache implements InitramfsCache {
  readonly name: string;
  constructor(
    readonly dir: string,
    readonly maxAgeDays: number,
    readonly maxBytes: number,
  ) {
    this.name = `local (${dir})`;
  }

  private files(key: string): { img: string; json: string } {
    return { img: path.join(this.dir, `${key}.img`), json: path.join(this.dir, `${key}.json`) };
  }

  async restore(key: string, dest: string, reporter: Reporter): Promise<Restored> {
    const { img, json } = this.files(key);
    let meta: EntryMeta;
    try {
      meta = JSON.parse(await readFile(json, 'utf8')) as EntryMeta;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { hit: false };
      return this.corrupt(key, `its record ${json} is unreadable`, reporter);
    }
    const size = await stat(img).then(
      (s) => s.size,
      () => -1,
    );
    if (meta.key !== key || size !== meta.size) {
      return this.corrupt(
        key,
        `${img} has ${size < 0 ? 'gone' : `${size} bytes, not ${meta.size}`}`,
        reporter,
      );
    }
    const tmp = tempBeside(dest);
    await copyFile(img, tmp);
    const digest = await sha256File(tmp);
    if (digest !== meta.sha256) {
      await rm(tmp, { force: true });
      return this.corrupt(key, `${img} has SHA-256 ${digest}, not ${meta.sha256}`, reporter);
    }
    await rename(tmp, dest);
    const now = new Date();
    await utimes(json, now, now).catch(() => undefined);
    return { hit: true, meta };
  }

  private async corrupt(key: string, why: string, reporter: Reporter): Promise<Restored> {
    reporter.warning(`The cached initramfs ${key} is corrupt (${why}); removing it and rebuilding`);
    await this.remove(key);
    return { hit: false };
  }

  private async remove(key: string): Promise<void> {
    const { img, json } = this.files(key);
    await rm(json, { force: true }); // the record first: without it the image is never used
    await rm(img, { force: true });
  }

  async save(key: string, file: string, meta: EntryMeta, reporter: Reporter): Promise<void> {
    const { img, json } = this.files(key);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o755 });
      await replaceAtomic(img, (tmp) => copyFile(file, tmp));
      await writeFileAtomic(json, `${JSON.stringify(meta, null, 2)}\n`);
      const pruned = await this.prune(key);
      if (pruned.length > 0)
        reporter.info(`Pruned ${pruned.length} old cache entr${pruned.length === 1 ? 'y' : 'ies'}`);
    } catch (error) {
      reporter.warning(
        `Could not save the initramfs to the cache ${this.dir}: ${errorMessage(error)}`,
      );
    }
  }

  /** Removes entries by age, then by total size (least recently used first); returns their keys. */
  async prune(keep: string, now = Date.now()): Promise<string[]> {
    const names = await readdir(this.dir);
    const entries: { key: string; used: number; bytes: number }[] = [];
    for (const name of names) {
      const full = path.join(this.dir, name);
      if (name.startsWith(`.${KEY_PREFIX}`) && name.includes('.tmp-')) {
        // A temporary file of a build that died: gone once it is clearly not in use.
        const st = await statOrUndefined(full);
        if (st && now - st.mtimeMs > TEMP_MAX_AGE_MS) await rm(full, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const key = name.slice(0, -'.json'.length);
      if (!(await ownRecord(full, key))) continue; // not this cache's
      const used = (await statOrUndefined(full))?.mtimeMs ?? 0;
      const bytes = (await statOrUndefined(path.join(this.dir, `${key}.img`)))?.size ?? 0;
      entries.push({ key, used, bytes });
    }
    // Images without a record are leftovers of an interrupted save or removal.
    for (const name of names) {
      if (
        name.startsWith(KEY_PREFIX) &&
        name.endsWith('.img') &&
        !names.includes(`${name.slice(0, -4)}.json`)
      ) {
        const st = await statOrUndefined(path.join(this.dir, name));
        if (st && now - st.mtimeMs > TEMP_MAX_AGE_MS)
          await rm(path.join(this.dir, name), { force: true });
      }
    }
    const pruned: string[] = [];
    const maxAge = this.maxAgeDays * 24 * 60 * 60 * 1000;
    entries.sort((a, b) => a.used - b.used); // oldest use first
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    for (const e of entries) {
      if (e.key === keep) continue;
      if (now - e.used > maxAge || total > this.maxBytes) {
        await this.remove(e.key);
        total -= e.bytes;
        pruned.push(e.key);
      }
    }
    return pruned;
  }
}
