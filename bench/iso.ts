/**
 * build-iso benchmark (issue 5): a cold build (empty initramfs cache: mkinitramfs runs)
 * against a cache-hit build on the same inputs, each phase timed, on the sample root
 * (scripts/sample-root: Debian trixie with linux-image-amd64) as sysroot and a client
 * config copied from it unchanged (Debian's MODULES=most, so netboot; COMPRESS=zstd).
 * Prints the ratio (target: a hit takes at most 15% of a cold build) and whether the two
 * ISOs are byte-identical.
 *
 *   npx tsx bench/iso.ts [--runs N] [--root DIR]
 *
 * Needs root, the sample root (made once, about 2 minutes), initramfs-tools, isolinux,
 * syslinux-common, grub-efi-amd64-bin, grub-common, mtools and xorriso.
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readInputs } from '../src/inputs/read.js';
import { buildIso, PHASES, type Phase } from '../src/iso/build.js';
import { buildIsoInputs } from '../src/iso/options.js';
import { recordingReporter } from '../src/report.js';
import { flag, median } from './lib/measure.js';

const RUNS = Number(flag('--runs') ?? '3');
const repo = path.resolve(import.meta.dirname, '..');
const sysroot =
  flag('--root') ??
  execFileSync(path.join(repo, 'scripts/sample-root'), [], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();

interface Timed {
  total: number;
  phases: Record<Phase, number>;
  sha256: string;
  hit: boolean;
}

async function timedBuild(inputs: Record<string, string>): Promise<Timed> {
  // Warnings as they come; the phase times are in the result.
  const reporter = recordingReporter((line) => {
    if (line.startsWith('warning: ')) console.error(line);
  });
  const t0 = process.hrtime.bigint();
  const result = await buildIso(
    readInputs(buildIsoInputs, (n) => inputs[n]),
    reporter,
    process.env,
  );
  return {
    total: Number(process.hrtime.bigint() - t0) / 1e9,
    phases: result.phaseSeconds,
    sha256: result.sha256,
    hit: result.initramfs.cacheHit,
  };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-iso-'));
try {
  const client = path.join(work, 'client');
  await mkdir(path.join(client, 'etc'), { recursive: true });
  await cp(path.join(sysroot, 'etc/initramfs-tools'), path.join(client, 'etc/initramfs-tools'), {
    recursive: true,
  });
  const cold: Timed[] = [];
  const hit: Timed[] = [];
  for (let run = 0; run < RUNS; run++) {
    const cacheDir = path.join(work, `cache-${run}`);
    const base = {
      root: client,
      sysroot,
      'nfs-root': '10.0.2.100:/srv/diskless/current',
      'cache-dir': cacheDir,
    };
    const c = await timedBuild({ ...base, output: path.join(work, `cold-${run}.iso`) });
    const h = await timedBuild({ ...base, output: path.join(work, `hit-${run}.iso`) });
    if (c.hit || !h.hit) throw new Error(`run ${run}: expected a miss then a hit`);
    cold.push(c);
    hit.push(h);
    console.log(
      `run ${run + 1}/${RUNS}: cold ${c.total.toFixed(2)} s, hit ${h.total.toFixed(2)} s`,
    );
  }
  const row = (label: string, pick: (t: Timed) => number) => {
    const c = median(cold.map(pick));
    const h = median(hit.map(pick));
    console.log(`${label.padEnd(12)} ${c.toFixed(2).padStart(8)} ${h.toFixed(2).padStart(8)}`);
  };
  console.log(`\nbuild-iso on ${sysroot}, median of ${RUNS} run(s), seconds`);
  console.log(`${'phase'.padEnd(12)} ${'cold'.padStart(8)} ${'hit'.padStart(8)}`);
  for (const p of PHASES) row(p, (t) => t.phases[p]);
  row('total', (t) => t.total);
  const ratio = median(hit.map((t) => t.total)) / median(cold.map((t) => t.total));
  console.log(
    `\ncache-hit / cold: ${(ratio * 100).toFixed(1)}% (target <= 15%: ${ratio <= 0.15 ? 'met' : 'NOT met'})`,
  );
  const shas = new Set([...cold, ...hit].map((t) => t.sha256));
  console.log(
    `ISOs byte-identical (cold and hit, every run): ${shas.size === 1 ? 'yes' : 'no'} (${[...shas].join(', ')})`,
  );
} finally {
  await rm(work, { recursive: true, force: true });
}
