/**
 * build-rootfs benchmark (issues 4 and 11): on a debootstrapped Debian root, the tool's
 * first build, no-change rebuild and one-file-changed rebuild, each against a plain
 * `rsync -aHAX --delete` with the same exclusions on the same tree (and the no-change
 * rebuild also against the same rsync with content comparison on, `-c`, which is what the
 * tool's "only content makes a release" promises), a rebuild after every file under /etc
 * and /usr/lib had only its modification time changed (no release may come of it), and the
 * disk a one-file-changed release adds (du counts hard links once across its arguments).
 *
 * The no-change figures also give the middle half of the runs and the CPU per run. Most
 * of a local rsync's time there is sleeping (it polls for its helper processes every
 * 20 ms), while the tool runs its own rsync, a find over the live /usr and its lock
 * helper side by side, and Node's own work: several times rsync's CPU, on the second
 * core. So the ratio holds while the machine has a core to spare, and grows when it does not.
 *
 *   npx tsx bench/rootfs.ts [--runs N] [--root DIR]
 *
 * Needs root, rsync, debootstrap (only to make the cached root once, in
 * /var/cache/diskless-bench/bookworm-root), systemd (systemctl) and openssh-client.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readInputs } from '../src/inputs/read.js';
import { silentReporter } from '../src/report.js';
import { buildRootfs } from '../src/rootfs/build.js';
import { exclusions } from '../src/rootfs/exclusions.js';
import { buildRootfsInputs } from '../src/rootfs/options.js';
import { flag, median } from './lib/measure.js';

const RUNS = Number(flag('--runs') ?? '5');
const CACHE = flag('--root') ?? '/var/cache/diskless-bench/bookworm-root';
const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

function ensureRoot(): void {
  if (existsSync(`${CACHE}.done`)) return;
  // A root given with --root is used as it is (e.g. the sample root, whose own script
  // marks it complete differently): never debootstrapped over.
  if (flag('--root') !== undefined) {
    if (existsSync(path.join(CACHE, 'etc'))) return;
    console.error(`bench/rootfs.ts: --root ${CACHE} is not a root directory (no etc/)`);
    process.exit(2);
  }
  console.error(
    `debootstrap --variant=minbase bookworm ${CACHE} ${MIRROR} (once, about 2 minutes)`,
  );
  execFileSync('rm', ['-rf', `${CACHE}.tmp`]);
  execFileSync('debootstrap', ['--variant=minbase', 'bookworm', `${CACHE}.tmp`, MIRROR], {
    stdio: 'inherit',
  });
  execFileSync('mv', ['-T', `${CACHE}.tmp`, CACHE]);
  execFileSync('touch', [`${CACHE}.done`]);
}

/** How long `work` took, in seconds; `work` may be synchronous. */
async function seconds(work: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * CPU seconds used so far by this process and its waited-for children (utime and stime of
 * /proc/self/stat, in USER_HZ ticks of 10 ms: a mean over many runs is what it is good for).
 */
function cpuSeconds(): number {
  const own = process.cpuUsage();
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  const children = (Number(fields[13]) + Number(fields[14])) / 100;
  return (own.user + own.system) / 1e6 + children;
}

/** du in bytes of `b` beyond what `a` already holds (hard links counted once). */
function duAdded(a: string, b: string): number {
  const out = execFileSync('du', ['-s', '--block-size=1', a, b], { encoding: 'utf8' });
  return Number(out.trim().split('\n')[1]?.split('\t')[0]);
}

/** Bytes on disk of the directories of a tree (large directories take several blocks). */
async function directoryBytes(dir: string): Promise<number> {
  let n = (await stat(dir)).blocks * 512;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += await directoryBytes(path.join(dir, e.name));
  }
  return n;
}

async function scenario(copyUsr: boolean): Promise<Record<string, string>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-'));
  try {
    const source = path.join(work, 'master');
    execFileSync('cp', ['-a', `${CACHE}/.`, source]);
    const target = path.join(work, 'clients');
    const plain = path.join(work, 'plain');
    const state = path.join(work, 'state');
    const options = readInputs(
      buildRootfsInputs,
      (name) =>
        ({
          source,
          target,
          'state-dir': state,
          'nfs-server': '10.0.0.1',
          'copy-usr': String(copyUsr),
          keep: '1000',
        })[name],
    );
    const excludeFile = path.join(work, 'exclude');
    const patterns = exclusions({ source, target, stateDir: state, copyUsr, extra: [], env: {} });
    await writeFile(excludeFile, `${patterns.join('\n')}\n`);
    const rsync = (content = false): void => {
      const r = spawnSync('rsync', [
        '-aHAX',
        ...(content ? ['-c'] : []),
        '--delete',
        `--exclude-from=${excludeFile}`,
        `${source}/`,
        `${plain}/`,
      ]);
      if (r.status !== 0) throw new Error(`rsync: ${r.stderr.toString()}`);
    };
    const tool = async (): Promise<{ release: string; changed: boolean }> => {
      const r = await buildRootfs(options, silentReporter, process.env);
      return { release: r.release, changed: r.changed };
    };

    const firstPlain = await seconds(() => {
      rsync();
    });
    let first = { release: '', changed: false };
    const firstTool = await seconds(async () => (first = await tool()));

    const nochangePlain: number[] = [];
    const nochangeContent: number[] = [];
    const nochangeTool: number[] = [];
    let contentCpu = 0;
    let toolCpu = 0;
    for (let i = 0; i < RUNS; i++) {
      nochangePlain.push(
        await seconds(() => {
          rsync();
        }),
      );
      let cpu = cpuSeconds();
      nochangeContent.push(
        await seconds(() => {
          rsync(true);
        }),
      );
      contentCpu += cpuSeconds() - cpu;
      let r = { release: '', changed: true };
      cpu = cpuSeconds();
      nochangeTool.push(await seconds(async () => (r = await tool())));
      toolCpu += cpuSeconds() - cpu;
      if (r.changed) throw new Error('a no-change rebuild published a release');
    }

    const changedFile = path.join(source, 'etc/bench-changed.conf');
    const onePlain: number[] = [];
    const oneTool: number[] = [];
    let previous = first.release;
    const added: number[] = [];
    const bound: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await appendFile(changedFile, `change ${i}\n`);
      onePlain.push(
        await seconds(() => {
          rsync();
        }),
      );
      let r = { release: '', changed: false };
      oneTool.push(await seconds(async () => (r = await tool())));
      if (!r.changed) throw new Error('a one-file-changed rebuild published nothing');
      const prevDir = path.join(target, 'releases', previous);
      const newDir = path.join(target, 'releases', r.release);
      added.push(duAdded(prevDir, newDir));
      // Its directories (a fresh directory tree per release) plus the one file's blocks.
      // The changed file, and the two small files that name each release (its id).
      let fileBytes = 0;
      for (const rel of [
        'etc/bench-changed.conf',
        'etc/diskless/release',
        'etc/issue.d/diskless-release.issue',
      ]) {
        fileBytes += (await stat(path.join(newDir, rel))).blocks * 512;
      }
      bound.push((await directoryBytes(newDir)) + fileBytes);
      previous = r.release;
    }
    // Times only (after the disk measure: touched files are copied, not linked, by the
    // next release that has a real change): every file under /etc (and /usr/lib, when it is copied) touched.
    const touchedDirs = ['etc', ...(copyUsr ? ['usr/lib'] : [])].map((d) => path.join(source, d));
    const touchedCount = Number(
      execFileSync('sh', ['-c', 'find "$@" -type f | wc -l', 'sh', ...touchedDirs], {
        encoding: 'utf8',
      }).trim(),
    );
    const touchTool: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      execFileSync('find', [...touchedDirs, '-type', 'f', '-exec', 'touch', '-m', '{}', '+']);
      let r = { release: '', changed: true };
      touchTool.push(await seconds(async () => (r = await tool())));
      if (r.changed) throw new Error('an mtime-only change published a release');
    }

    const tree = execFileSync(
      'du',
      ['-s', '--block-size=1', path.join(target, 'releases', first.release)],
      {
        encoding: 'utf8',
      },
    );
    const fmt = (s: number): string => `${s.toFixed(2)} s`;
    // The no-change figures are tens of milliseconds: in ms, with the middle half of the runs.
    const ms = (s: number): string => `${(s * 1000).toFixed(1)} ms`;
    const spread = (xs: number[]): string => {
      const sorted = [...xs].sort((a, b) => a - b);
      const at = (q: number): number => sorted[Math.floor(q * (sorted.length - 1))] ?? NaN;
      return `${ms(median(xs))} (${ms(at(0.25))}-${ms(at(0.75))})`;
    };
    return {
      'copy-usr': String(copyUsr),
      'client root size': `${(Number(tree.split('\t')[0]) / 2 ** 20).toFixed(0)} MiB`,
      'first build: tool / plain rsync': `${fmt(firstTool)} / ${fmt(firstPlain)}`,
      'no-change rebuild (median): tool / plain rsync': `${fmt(median(nochangeTool))} / ${fmt(median(nochangePlain))}`,
      'no-change ratio to plain rsync': (median(nochangeTool) / median(nochangePlain)).toFixed(2),
      'no-change: plain rsync -c (content comparison, median)': fmt(median(nochangeContent)),
      'no-change, median (middle half): tool': spread(nochangeTool),
      'no-change, median (middle half): rsync -c': spread(nochangeContent),
      'no-change CPU per run (mean): tool / rsync -c': `${ms(toolCpu / RUNS)} / ${ms(contentCpu / RUNS)}`,
      'no-change ratio to rsync -c (target <= 1.3)': (
        median(nochangeTool) / median(nochangeContent)
      ).toFixed(2),
      [`mtime-only change of ${touchedCount} files (median), no release`]: fmt(median(touchTool)),
      'one-file-changed (median): tool / plain rsync': `${fmt(median(oneTool))} / ${fmt(median(onePlain))}`,
      'disk added by a one-file-changed release (max)': `${Math.max(...added)} B`,
      'bound: its directories + the file + its id files (min)': `${Math.min(...bound)} B`,
      'within the bound': String(added.every((a, i) => a <= (bound[i] ?? 0))),
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (process.getuid?.() !== 0) {
  console.error(
    'bench/rootfs.ts must run as root (numeric owners, capabilities, systemctl --root)',
  );
  process.exit(1);
}
ensureRoot();
for (const copyUsr of [false, true]) {
  const rows = await scenario(copyUsr);
  console.log(`\nbuild-rootfs benchmark, ${CACHE}, ${RUNS} runs each, copy-usr=${String(copyUsr)}`);
  for (const [k, v] of Object.entries(rows)) console.log(`  ${k.padEnd(50)} ${v}`);
}
