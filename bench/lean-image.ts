/**
 * The lean boot image against netboot (issue 15), on each Debian release of
 * scripts/sample-root: a client release (build-rootfs with the example template and the
 * boot report unit), then three ISOs of it: the vm preset with zstd (what the workflow
 * builds), netboot with zstd (the default on a Debian sysroot) and netboot with gzip (the
 * 35 MiB image of before). Prints each ISO's size and initramfs size, the time to upload
 * it over the upload bench's link (bench/upload.ts --images), and with --boot the time
 * from QEMU's start to the client's report with BIOS and with UEFI. Target: the lean ISO
 * at most half of 35 MiB, and no slower to boot.
 *
 *   npm run bench -- lean-image [--suites trixie,bookworm] [--boot [--runs N] [--realtime]]
 *
 * With --runs, the boots go round by round (each image once per round) and each image's
 * median is compared. On a shared machine add --realtime: each QEMU process is put on
 * SCHED_FIFO (chrt -f 20) as it starts, so that other work does not take the boots' core
 * (the times are wall clock under TCG). Only QEMU: a Node process at a real-time priority
 * (tsx's wrappers) can starve the whole machine.
 *
 * Needs root, the sample roots, the bundled actions (npm run build) and, for --boot, the
 * packages of the boot test. Each boot takes about a minute under TCG.
 */
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runAction } from '../src/harness/run-action.js';
import { flag, median } from './lib/measure.js';

const repo = path.resolve(import.meta.dirname, '..');
const SERVER = '10.0.2.100';
const MiB = 2 ** 20;
const suites = (flag('--suites') ?? 'trixie,bookworm').split(',');
const boot = process.argv.includes('--boot');
const IMAGES = {
  'vm zstd': { 'initramfs-modules': 'vm', 'initramfs-compression': 'zstd' },
  'netboot zstd': { 'initramfs-modules': 'netboot', 'initramfs-compression': 'zstd' },
  'netboot gzip': { 'initramfs-modules': 'netboot', 'initramfs-compression': 'gzip' },
} as const;

async function action(name: string, inputs: Record<string, string>) {
  const run = await runAction({ actionDir: path.join(repo, 'actions', name), inputs });
  if (run.exitCode !== 0) {
    throw new Error(`${name} failed:\n${run.main.log.join('\n')}\n${run.main.stderr}`);
  }
  return { outputs: run.outputs, log: run.main.log.join('\n') };
}

function sampleRoot(suite: string): string {
  const r = spawnSync(path.join(repo, 'scripts/sample-root'), ['--suite', suite], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`scripts/sample-root --suite ${suite} failed`);
  return r.stdout.trim();
}

/** The images booted: the lean one and the 35 MiB one of before (netboot zstd is in between). */
const BOOTED = ['vm zstd', 'netboot gzip'];
const work = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-lean-'));
const RUNS = Number(flag('--runs') ?? '1');

interface Built {
  suite: string;
  label: string;
  iso: string;
  root: string;
  master: string;
  row: string;
  bios: number[];
  uefi: number[];
}

/** A client release of `suite`'s sample master, and the three ISOs of it. */
async function buildImages(suite: string, template: string): Promise<Built[]> {
  const master = sampleRoot(suite);
  const rootfs = await action('build-rootfs', {
    source: master,
    target: path.join(work, suite, 'rootfs'),
    template,
    'state-dir': path.join(work, suite, 'state'),
    'nfs-server': SERVER,
    'client-hostname': `bench-${suite}`,
    'enable-services': 'diskless-boot-report.service',
    // The site's settings, as the demo and the workflow pass them.
    'var-dirs': await readFile(path.join(repo, 'settings/var-dirs'), 'utf8'),
    'template-values': await readFile(path.join(repo, 'settings/template-values'), 'utf8'),
  });
  const root = rootfs.outputs.root ?? '';
  const built: Built[] = [];
  for (const [label, inputs] of Object.entries(IMAGES)) {
    const iso = path.join(work, suite, `${label.replace(' ', '-')}.iso`);
    const b = await action('build-iso', {
      root,
      sysroot: master,
      'nfs-root': `${SERVER}:${root}`,
      // no_timer_check: a guest starved of CPU under TCG can fail the IO-APIC timer check and panic.
      cmdline: 'panic=10 no_timer_check',
      output: iso,
      'cache-dir': '/var/cache/diskless-bench/initramfs',
      cache: 'local',
      ...inputs,
    });
    const initrd = /Initramfs: ([\d.]+ \w+),/.exec(b.log)?.[1] ?? '?';
    const row = `${suite.padEnd(9)} ${label.padEnd(13)} ISO ${(Number(b.outputs.size) / MiB).toFixed(1)} MiB, initramfs ${initrd}`;
    console.log(row);
    built.push({ suite, label, iso, root, master, row, bios: [], uefi: [] });
  }
  return built;
}

/** One boot of each image with BIOS and UEFI, to the client's report. */
async function bootOnce(image: Built): Promise<void> {
  const b = await action('boot-test', {
    iso: image.iso,
    root: image.root,
    firmware: 'both',
    until: 'report',
    'boot-timeout': '600',
  });
  image.bios.push(Number(b.outputs['bios-seconds']));
  image.uefi.push(Number(b.outputs['uefi-seconds']));
  console.log(
    `  boot ${image.suite} ${image.label}: BIOS ${b.outputs['bios-seconds'] ?? '?'} s, UEFI ${b.outputs['uefi-seconds'] ?? '?'} s`,
  );
}

/** Puts every QEMU process not yet on SCHED_FIFO there (chrt -f 20), threads included. */
function qemuRealtime(): void {
  const pids = spawnSync('pgrep', ['qemu-system'], { encoding: 'utf8' }).stdout;
  for (const pid of pids.split('\n').filter(Boolean)) {
    const policy = spawnSync('chrt', ['-p', pid], { encoding: 'utf8' }).stdout;
    if (!policy.includes('SCHED_FIFO')) spawnSync('chrt', ['-a', '-f', '-p', '20', pid]);
  }
}

const seconds = (xs: number[]): string =>
  `${median(xs).toFixed(1)} s (${xs.map((x) => x.toFixed(1)).join(', ')})`;

const images: Built[] = [];
try {
  const template = path.join(work, 'template');
  await cp(path.join(repo, 'template'), template, { recursive: true });
  await cp(path.join(repo, 'test/e2e/template'), template, { recursive: true });
  for (const suite of suites) images.push(...(await buildImages(suite, template)));
  // Round after round, each image once: a change of the machine's load meets every image
  // alike. With --realtime, QEMU runs at a real-time priority (see the header).
  const realtime = process.argv.includes('--realtime') ? setInterval(qemuRealtime, 200) : undefined;
  for (let round = 1; boot && round <= RUNS; round++) {
    console.log(`boot round ${round} of ${RUNS}`);
    for (const image of images.filter((i) => BOOTED.includes(i.label))) await bootOnce(image);
  }
  clearInterval(realtime);
  console.log(`\nlean (vm preset, zstd) against netboot, ${suites.join(' and ')}:`);
  for (const image of images) {
    console.log(`  ${image.row}`);
    if (boot && BOOTED.includes(image.label)) {
      console.log(`    boot to the report, median of ${RUNS}: BIOS ${seconds(image.bios)}`);
      console.log(`    ${' '.repeat(30)}UEFI ${seconds(image.uefi)}`);
    }
  }
  for (const suite of suites) {
    const lean = images.find((i) => i.suite === suite && i.label === 'vm zstd');
    const net = images.find((i) => i.suite === suite && i.label === 'netboot gzip');
    if (!boot || !lean || !net) continue;
    for (const fw of ['bios', 'uefi'] as const) {
      console.log(
        `  ${suite} ${fw.toUpperCase()}: lean / netboot gzip boot time ${(median(lean[fw]) / median(net[fw])).toFixed(2)} (target <= 1.00)`,
      );
    }
  }
  console.log(`target: the lean ISO <= ${(35 / 2).toFixed(1)} MiB (half of 35 MiB)\n`);
  // The upload bench's emulator and link, with these ISOs.
  const upload = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'upload.ts'),
      '--images',
      images.map((i) => i.iso).join(','),
    ],
    { stdio: 'inherit' },
  );
  if (upload.status !== 0) throw new Error('bench/upload.ts --images failed');
} finally {
  await rm(work, { recursive: true, force: true });
}
