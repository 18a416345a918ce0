// The cache backends' choice and the local cache's bookkeeping: pruning by age and size,
// atomic entries that are checked before use.
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseCache } from '../../src/iso/cache.js';
import { LocalCache } from '../../src/iso/cache-local.js';
import { sha256 } from '../../src/files.js';
import { tempDir } from './fixture.js';
import { recordingReporter } from '../../src/report.js';

const DAY = 24 * 60 * 60 * 1000;

async function entry(dir: string, key: string, bytes: number, ageDays: number): Promise<void> {
  const data = Buffer.alloc(bytes, key);
  await writeFile(path.join(dir, `${key}.img`), data);
  const meta = {
    key,
    sha256: sha256(data),
    size: bytes,
    kernelVersion: '6.1.0-1-amd64',
    created: '',
  };
  const json = path.join(dir, `${key}.json`);
  await writeFile(json, JSON.stringify(meta));
  const when = new Date(Date.now() - ageDays * DAY);
  await utimes(json, when, when);
}

describe('the local initramfs cache', () => {
  it('prunes entries unused for longer than the maximum age, then the least recently used over the size', async () => {
    const dir = await tempDir('cache');
    await entry(dir, 'old', 100, 40);
    await entry(dir, 'a', 400, 3);
    await entry(dir, 'b', 400, 2);
    await entry(dir, 'c', 400, 1);
    const cache = new LocalCache(dir, 30, 900);
    expect(await cache.prune('c')).toEqual(['old', 'a']);
    expect((await readdir(dir)).sort()).toEqual(['b.img', 'b.json', 'c.img', 'c.json']);
  });

  it('prunes only its own entries in a cache-dir shared with other files', async () => {
    const dir = await tempDir('cache');
    await entry(dir, 'old', 100, 40);
    const others = ['notes.json', 'photo.img', '.editor.swp.tmp-1', 'report.json.img'];
    await writeFile(path.join(dir, 'notes.json'), '{"key":"notes"}');
    for (const name of others.slice(1)) await writeFile(path.join(dir, name), 'x'.repeat(5000));
    const long = new Date(Date.now() - 40 * DAY);
    for (const name of others) await utimes(path.join(dir, name), long, long);
    expect(await new LocalCache(dir, 30, 100).prune('none')).toEqual(['old']);
    expect((await readdir(dir)).sort()).toEqual([...others].sort());
  });

  it('keeps the entry just stored even when it alone is over the size', async () => {
    const dir = await tempDir('cache');
    await entry(dir, 'big', 2000, 0);
    expect(await new LocalCache(dir, 30, 1000).prune('big')).toEqual([]);
  });

  it('restores a good entry, and removes one whose image does not match its digest', async () => {
    const dir = await tempDir('cache');
    await entry(dir, 'good', 1000, 1);
    await entry(dir, 'bad', 1000, 1);
    await writeFile(path.join(dir, 'bad.img'), Buffer.alloc(1000, 'x'));
    const cache = new LocalCache(dir, 30, 1 << 30);
    const out = await tempDir('restore');
    const c = recordingReporter();
    expect((await cache.restore('good', path.join(out, 'good.img'), c)).hit).toBe(true);
    expect((await cache.restore('bad', path.join(out, 'bad.img'), c)).hit).toBe(false);
    expect(c.warnings).toHaveLength(1);
    expect(c.warnings[0]).toMatch(/^The cached initramfs bad is corrupt/);
    expect((await readdir(dir)).sort()).toEqual(['good.img', 'good.json']);
    expect((await readdir(out)).sort()).toEqual(['good.img']);
    expect((await cache.restore('absent', path.join(out, 'x.img'), c)).hit).toBe(false);
  });
});

describe('the cache backend choice', () => {
  const choice = (cache: 'auto' | 'local' | 'github' | 'off', cacheDir?: string) => ({
    cache,
    cacheDir,
    maxAgeDays: 30,
    maxBytes: 1 << 30,
  });
  /** A step's environment outside a runner (no cache service), and inside one. */
  const withoutGithub = { PATH: process.env.PATH };
  const withGithub = { ...withoutGithub, ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/' };

  it('auto is local with a cache directory, GitHub where available, else none', async () => {
    const dir = path.join(await tempDir('cache'), 'c');
    await mkdir(dir);
    expect(chooseCache(choice('auto', dir), recordingReporter(), withoutGithub)?.name).toBe(
      `local (${dir})`,
    );
    expect(chooseCache(choice('auto'), recordingReporter(), withoutGithub)).toBeUndefined();
    expect(chooseCache(choice('auto'), recordingReporter(), withGithub)?.name).toBe(
      "GitHub's Actions cache",
    );
  });

  it('github where it is not available builds without a cache, with a warning', () => {
    const c = recordingReporter();
    expect(chooseCache(choice('github'), c, withoutGithub)).toBeUndefined();
    expect(c.warnings.join('\n')).toContain("GitHub's cache is not available here");
  });
});
