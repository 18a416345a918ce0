// Releases on a fixture master with the real rsync: staged builds, promote and roll back,
// retention that keeps what any signal names, and no release for a change of times alone.
import { chmod, mkdir, readdir, readFile, readlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/env.js';
import { DisklessError } from '../../src/errors.js';
import { exists } from '../../src/files.js';
import { readInputs } from '../../src/inputs/read.js';
import { readHistory, type Promotion } from '../../src/releases/history.js';
import { recordUpload } from '../../src/releases/ledger.js';
import { promoteInputs } from '../../src/releases/options.js';
import { promote, reportPromote } from '../../src/releases/promote.js';
import { buildReport, makeMaster, options, tempDir } from '../rootfs/fixture.js';
import { rejected } from '../helpers/errors.js';
import { recordingReporter } from '../../src/report.js';

let master: string;
let state: string;
let noMounts: string;

beforeAll(async () => {
  master = await makeMaster();
  await chmod(master, 0o755);
  state = await tempDir('state');
  noMounts = path.join(await tempDir('mounts'), 'rmtab');
});

async function build(target: string, extra: Record<string, string> = {}) {
  const log = recordingReporter();
  const report = await buildReport(
    options({
      source: master,
      target,
      'state-dir': state,
      'nfs-server': '10.0.0.1',
      'nfs-mounts': noMounts,
      ...extra,
    }),
    log,
  );
  const o = report.outputs;
  return {
    release: o.release,
    root: o.root,
    changed: o.changed,
    published: o.published,
    summary: new Map(report.summary),
    log,
  };
}

/** A change of content on the master, so the next build makes a new release. */
let edits = 0;
async function changeMaster(): Promise<void> {
  edits += 1;
  await writeFile(path.join(master, 'etc/motd'), `master motd ${String(edits)}\n`);
}

async function releaseDirs(target: string): Promise<string[]> {
  return (await readdir(path.join(target, 'releases')))
    .filter((n) => /^\d{8}T\d{6}Z(-\d+)?$/.test(n))
    .sort();
}

async function current(target: string): Promise<string> {
  return path.basename(await readlink(path.join(target, 'current')));
}

/** promote's report; `env` is the step's environment (this process's unless given). */
async function promoteRun(
  target: string,
  release: string,
  extra: Record<string, string> = {},
  env: Env = process.env,
) {
  const raw: Record<string, string> = { target, release, ...extra };
  return reportPromote(
    await promote(
      readInputs(promoteInputs, (n) => raw[n]),
      recordingReporter(),
      env,
    ),
  );
}

describe('staged builds and promotion', () => {
  let target: string;
  let r1: string;
  let r2: string;

  beforeAll(async () => {
    target = path.join(await tempDir('target'), 'clients');
    r1 = (await build(target)).release;
    await changeMaster();
  });

  it('publish: false builds a complete release and leaves current alone', async () => {
    const staged = await build(target, { publish: 'false' });
    r2 = staged.release;
    expect(staged.changed).toBe(true);
    expect(staged.published).toBe(false);
    expect(staged.root).toBe(path.join(target, 'releases', r2));
    expect(await exists(path.join(target, 'releases', `${r2}.json`))).toBe(true);
    expect(await current(target)).toBe(r1);
    expect(staged.summary.get('Current')).toContain(`${r1} (staged, not published)`);
    // The client can tell which release it runs.
    expect(await readFile(path.join(staged.root, 'etc/diskless/release'), 'utf8')).toBe(`${r2}\n`);
  });

  it('a no-change rebuild returns the staged release, not a new one, and still stages', async () => {
    const again = await build(target, { publish: 'false' });
    expect([again.release, again.changed, again.published]).toEqual([r2, false, false]);
    expect(await releaseDirs(target)).toEqual([r1, r2]);
    expect(await current(target)).toBe(r1);
  });

  it('promote makes the staged release current and records it', async () => {
    const out = await promoteRun(target, r2);
    expect(out.outputs).toEqual({ release: r2, previous: r1, changed: true });
    expect(await current(target)).toBe(r2);
    const history = await readHistory(target);
    expect(history.map((p) => [p.from, p.to])).toEqual([
      [undefined, r1],
      [r1, r2],
    ]);
    expect(history[1]?.by).toMatch(/diskless command line|run \d+/);
    expect(Date.now() - Date.parse(history[1]?.time ?? '')).toBeLessThan(60_000);
  });

  it('promote previous rolls back, and a second one undoes the rollback', async () => {
    const back = await promoteRun(target, 'previous');
    expect(back.outputs).toEqual({ release: r1, previous: r2, changed: true });
    expect(await current(target)).toBe(r1);
    expect((await readHistory(target)).at(-1)).toMatchObject({ from: r2, to: r1, rollback: true });
    const forth = await promoteRun(target, 'previous');
    expect(forth.outputs).toEqual({ release: r2, previous: r1, changed: true });
    expect(await current(target)).toBe(r2);
  });

  it('a dry run and a promote of the current release change nothing', async () => {
    const before = await readFile(path.join(target, 'promotions.json'), 'utf8');
    const dry = await promoteRun(target, 'previous', { 'dry-run': 'true' });
    expect(dry.outputs).toEqual({ release: r1, previous: r2, changed: false });
    const same = await promoteRun(target, r2);
    expect(same.outputs.changed).toBe(false);
    expect(await current(target)).toBe(r2);
    expect(await readFile(path.join(target, 'promotions.json'), 'utf8')).toBe(before);
  });

  it('refuses an unknown or incomplete id with nothing changed', async () => {
    const before = await readFile(path.join(target, 'promotions.json'), 'utf8');
    const unknown = await rejected(DisklessError, promoteRun(target, '20991231T235959Z'));
    expect(unknown.message).toContain('got "20991231T235959Z"; expected a complete release');
    // A release directory without its metadata is one a build did not finish.
    const incomplete = '20000101T000000Z';
    await mkdir(path.join(target, 'releases', incomplete));
    expect((await rejected(DisklessError, promoteRun(target, incomplete))).message).toContain(
      'expected a complete release',
    );
    expect(() => readInputs(promoteInputs, (n) => ({ target, release: 'latest' })[n])).toThrow(
      'Input "release": got "latest"; expected a release id such as 20261129T120000Z, or previous',
    );
    expect(await current(target)).toBe(r2);
    expect(await readFile(path.join(target, 'promotions.json'), 'utf8')).toBe(before);
  });

  it('records who promoted from the env it is given: the workflow run', async () => {
    const t = path.join(await tempDir('target'), 'clients');
    const staged = await build(t, { publish: 'false' });
    const env = {
      GITHUB_RUN_ID: '7',
      GITHUB_REPOSITORY: 'ops/clients',
      GITHUB_WORKFLOW: 'release',
      GITHUB_ACTOR: 'alice',
    };
    const out = await promoteRun(t, staged.release, {}, env);
    expect(new Map(out.summary).get('By')).toBe('ops/clients release run 7 by alice');
    expect((await readHistory(t)).at(-1)).toMatchObject({
      to: staged.release,
      by: 'ops/clients release run 7 by alice',
    });
  });

  it('refuses publish: false with the in-place layout', () => {
    expect(() => options({ target: '/srv/x', layout: 'in-place', publish: 'false' })).toThrow(
      /^Input "publish": got "false"; expected true with layout in-place/,
    );
  });

  it('a failed switch of current leaves no release behind as if published', async () => {
    const t = path.join(await tempDir('target'), 'clients');
    const first = await build(t, { publish: 'false' });
    // current is a directory: renaming the new link over it fails.
    await mkdir(path.join(t, 'current'));
    await changeMaster();
    await expect(build(t)).rejects.toThrow();
    expect(await releaseDirs(t)).toEqual([first.release]);
    expect((await readdir(path.join(t, 'releases'))).filter((n) => n.includes('.partial'))).toEqual(
      [],
    );
  });
});

describe('releases only for changes of content', () => {
  it('an mtime-only change publishes nothing; a same-size change of content does', async () => {
    const target = path.join(await tempDir('target'), 'clients');
    const first = await build(target);
    const file = path.join(master, 'etc/motd');
    const later = new Date(Date.now() + 3_600_000);
    await utimes(file, later, later);
    await utimes(path.join(master, 'etc/passwd'), later, later);
    const touched = await build(target);
    expect([touched.changed, touched.release]).toEqual([false, first.release]);
    // Same size, new content, time moved too: a real change is still seen.
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/.$/s, text.endsWith('X\n') ? 'Y\n' : 'X\n'));
    const edited = await build(target);
    expect(edited.changed).toBe(true);
    expect(edited.release).not.toBe(first.release);
  });
});

describe('retention', () => {
  let target: string;
  let ids: string[];

  beforeAll(async () => {
    target = path.join(await tempDir('target'), 'clients');
    ids = [];
    for (let i = 0; i < 7; i++) {
      await changeMaster();
      const b = await build(target);
      expect(b.changed).toBe(true);
      ids.push(b.release);
    }
  });

  it('seven changed builds in a row with default inputs delete nothing', async () => {
    expect(await releaseDirs(target)).toEqual(ids);
  });

  it('removes only what is past keep and keep-days and named by no signal, and says why', async () => {
    // Age the history and metadata by 40 days: everything but the newest left current long ago.
    const day = 24 * 3600 * 1000;
    const history = await readHistory(target);
    const aged: Promotion[] = history.map((p) => ({
      ...p,
      time: new Date(Date.parse(p.time) - 40 * day).toISOString(),
    }));
    await writeFile(path.join(target, 'promotions.json'), JSON.stringify(aged));
    for (const id of ids) {
      const file = path.join(target, 'releases', `${id}.json`);
      const meta = JSON.parse(await readFile(file, 'utf8')) as { created: string };
      meta.created = new Date(Date.parse(meta.created) - 40 * day).toISOString();
      await writeFile(file, JSON.stringify(meta));
    }
    const [r1 = '', r2 = '', r3 = '', r4 = '', r5 = ''] = ids;
    // Signals: a drive boots r1, a client mounted r2, the operator keeps r3.
    await recordUpload(target, {
      target: 'zone-a',
      release: r1,
      sha256: 'a'.repeat(64),
      time: new Date().toISOString(),
    });
    await writeFile(path.join(target, 'releases', `${r4}.iso`), 'iso');
    const rmtab = path.join(await tempDir('mounts'), 'rmtab');
    await writeFile(rmtab, `10.0.0.7:${target}/releases/${r2}:0x00000001\n`);

    const b = await build(target, { keep: '2', 'nfs-mounts': rmtab, 'keep-releases': r3 });
    expect(b.changed).toBe(false);
    expect(await releaseDirs(target)).toEqual([r1, r2, r3, ...ids.slice(5)]);
    for (const gone of [r4, r5]) {
      expect(await exists(path.join(target, 'releases', `${gone}.json`))).toBe(false);
    }
    expect(await exists(path.join(target, 'releases', `${r4}.iso`))).toBe(false);
    const kept = b.summary.get('Releases kept') ?? '';
    expect(kept).toContain(`${r1} (ledger: zone-a)`);
    expect(kept).toContain(`${r2} (mounted: ${rmtab})`);
    expect(kept).toContain(`${r3} (keep-releases)`);
    expect(kept).toMatch(new RegExp(`${ids[6] ?? ''} \\(current; among the 2 newest`));
    expect(b.summary.get('Releases removed')).toBe(`${r4}, ${r5}`);
  });

  it('removes nothing, with a warning, when a signal cannot be read', async () => {
    await writeFile(path.join(target, 'ledger', 'broken.json'), '{not json');
    const before = await releaseDirs(target);
    const b = await build(target, { keep: '2', 'keep-days': '0' });
    expect(await releaseDirs(target)).toEqual(before);
    expect(b.log.warnings.join('\n')).toContain('broken.json is not a ledger entry');
    expect(b.summary.get('Releases removed')).toBe('none');
  });
});
