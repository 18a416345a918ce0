/**
 * The initramfs cache in GitHub's Actions cache (@actions/cache), used only where the
 * runner provides it (ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL). The entry is a directory
 * holding the image and its record; a restored image is checked against the record's
 * SHA-256 like a local one. A failed restore is a miss and a failed save a warning: the
 * cache makes builds faster, it never makes them fail.
 */
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../env.js';
import { errorMessage } from '../errors.js';
import type { Reporter } from '../report.js';
import type { EntryMeta, InitramfsCache, Restored } from './cache-local.js';
import { sha256File } from '../files.js';

/** True when the runner gives this job GitHub's cache service. */
export function githubCacheAvailable(env: Env): boolean {
  return Boolean(env.ACTIONS_CACHE_URL ?? env.ACTIONS_RESULTS_URL);
}

export class GithubCache implements InitramfsCache {
  readonly name = "GitHub's Actions cache";
  /** The same path on save and restore: @actions/cache keys entries by their paths too. */
  private readonly dir: string;

  /** `env`: the runner's, for its temporary directory (RUNNER_TEMP). */
  constructor(env: Env) {
    this.dir = path.join(env.RUNNER_TEMP ?? os.tmpdir(), 'diskless-initramfs-cache');
  }

  async restore(key: string, dest: string, reporter: Reporter): Promise<Restored> {
    await rm(this.dir, { recursive: true, force: true });
    let found: string | undefined;
    try {
      const cache = await import('@actions/cache');
      found = await cache.restoreCache([this.dir], key);
    } catch (error) {
      reporter.warning(
        `Could not read GitHub's cache: ${errorMessage(error)}; building the initramfs`,
      );
      return { hit: false };
    }
    if (found !== key) return { hit: false };
    try {
      const meta = JSON.parse(
        await readFile(path.join(this.dir, 'meta.json'), 'utf8'),
      ) as EntryMeta;
      const img = path.join(this.dir, 'initrd.img');
      const digest = await sha256File(img);
      if (meta.key !== key || digest !== meta.sha256) {
        reporter.warning(
          `The cached initramfs ${key} from GitHub's cache is corrupt (SHA-256 ${digest}, not ${meta.sha256}); rebuilding`,
        );
        return { hit: false };
      }
      await copyFile(img, dest);
      return { hit: true, meta };
    } catch (error) {
      reporter.warning(
        `The cached initramfs ${key} from GitHub's cache is unreadable (${errorMessage(error)}); rebuilding`,
      );
      return { hit: false };
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  async save(key: string, file: string, meta: EntryMeta, reporter: Reporter): Promise<void> {
    try {
      await rm(this.dir, { recursive: true, force: true });
      await mkdir(this.dir, { recursive: true });
      await copyFile(file, path.join(this.dir, 'initrd.img'));
      await writeFile(path.join(this.dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
      const cache = await import('@actions/cache');
      const id = await cache.saveCache([this.dir], key);
      if (id === -1)
        reporter.warning(`GitHub's cache did not take the initramfs ${key} (see the lines above)`);
    } catch (error) {
      reporter.warning(`Could not save the initramfs to GitHub's cache: ${errorMessage(error)}`);
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}
