/**
 * build-iso: the kernel, the client's NFS initramfs and two boot loaders in one ISO.
 *
 *   kernel     the tools and loader files are there; the kernel, its version and modules
 *   initramfs  the client's etc/initramfs-tools, adjusted (BOOT=nfs, the chosen modules); the
 *              cache key; a hit copies the cached image, a miss runs mkinitramfs (in the
 *              sysroot); either is unpacked and checked for an NFS boot before it is stored
 *   loaders    the ISO tree: isolinux (BIOS) and a GRUB EFI image (UEFI), one command line
 *   iso        xorriso, reproducibly, into a temporary file beside `output`
 *   check      the ISO read back; only then is it renamed to `output`, with <output>.sha256
 *
 * A failure at any point leaves no partial ISO at `output` (a previous one stays as it was),
 * no work files, and no /proc mounted in the sysroot.
 *
 * buildIso is that list, one function per phase over the build's context (IsoRun), which
 * also holds what the final cleanup removes.
 */
import { copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Env } from '../env.js';
import { humanBytes, timedPhases, type Reporter } from '../report.js';
import type { InitramfsCache } from './cache-local.js';
import { chooseCache } from './cache.js';
import { cacheKey, sharedTree } from './cache-key.js';
import { checkIso } from './check.js';
import { seconds, sha256, sha256File, tempBeside, writeFileAtomic } from '../files.js';
import { findMkinitramfs, mkinitramfs, packageVersions, type PreparedConfig } from './initramfs.js';
import { scanImage, type ImageContents } from './image-scan.js';
import { checkClientInitramfs } from './initramfs-check.js';
import { checkCompression, prepareClientConfig } from './modules.js';
import { makeIso } from './iso.js';
import { findKernel, type Kernel } from './kernel.js';
import { kernelCommandLine, stageTree, type Staged } from './loaders.js';
import type { BuildIsoOptions, BuildIsoReport } from './options.js';
import { findTools, type BootMode, type Tools } from './tools.js';

/** The phases in order, each with the title of its log group. */
const PHASE_TITLES = {
  kernel: 'Kernel and tools',
  initramfs: 'Initramfs',
  loaders: 'Boot loaders',
  iso: 'ISO image',
  check: 'Check the ISO',
} as const;
export type Phase = keyof typeof PHASE_TITLES;
export const PHASES = Object.keys(PHASE_TITLES) as Phase[];

/** SOURCE_DATE_EPOCH when set, else the kernel image's date: never the clock. */
interface IsoEpoch {
  epoch: number;
  /** Where it came from, for the log. */
  from: string;
}

function isoEpoch(kernelMtime: number, env: Env): IsoEpoch {
  const set = env.SOURCE_DATE_EPOCH;
  if (set && /^\d{1,12}$/.test(set.trim())) {
    return { epoch: Number(set.trim()), from: 'SOURCE_DATE_EPOCH' };
  }
  return { epoch: kernelMtime, from: "the kernel image's date" };
}

/** Moves a file, copying when it crosses filesystems (the sysroot may be elsewhere). */
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}

/** One build: its inputs, its work directories and what the cleanup removes. */
interface IsoRun {
  options: BuildIsoOptions;
  reporter: Reporter;
  /** The caller's environment: SOURCE_DATE_EPOCH, PATH for the tools, the runner's cache. */
  env: Env;
  /** The build's start (Date.now()). */
  started: number;
  /** Runs a phase in its log group, timed. */
  phase: <T>(p: Phase, work: () => Promise<T>) => Promise<T>;
  seconds: Record<string, number>;
  sysroot: string;
  output: string;
  mode: BootMode;
  cmdline: string;
  cache: InitramfsCache | undefined;
  /** Work files outside the sysroot. */
  scratch: string;
  /** mkinitramfs's work directory inside the sysroot, when it is not /. */
  sysrootWork?: string;
  /** The ISO until it is renamed to `output`. */
  partial?: string;
}

/** What a build made: the step's result, which reportBuildIso turns into its report. */
export interface BuildIsoResult {
  /** The ISO's absolute path, and its SHA-256 and size in bytes. */
  iso: string;
  sha256: string;
  size: number;
  kernel: { version: string; image: string };
  initramfs: {
    cacheHit: boolean;
    cacheKey: string;
    /** The cache's name, or 'off'. */
    backend: string;
    bytes: number;
  };
  mode: BootMode;
  cmdline: string;
  /** Seconds spent in each phase. */
  phaseSeconds: Record<Phase, number>;
  /** The whole build, in milliseconds. */
  milliseconds: number;
}

/**
 * Builds the bootable ISO: client initramfs (cached), kernel, BIOS and UEFI loaders, in
 * the caller's environment `env`.
 */
export async function buildIso(
  options: BuildIsoOptions,
  reporter: Reporter,
  env: Env,
): Promise<BuildIsoResult> {
  const run = await start(options, reporter, env);
  try {
    const { tools, kernel } = await run.phase('kernel', () => kernelAndTools(run));
    const epoch = isoEpoch(kernel.mtime, run.env);
    const initrd = await run.phase('initramfs', () => initramfs(run, kernel));
    const staged = await run.phase('loaders', () => loaders(run, { tools, kernel, initrd, epoch }));
    await run.phase('iso', () => iso(run, tools, staged, epoch));
    const result = await run.phase('check', () => check(run, { tools, kernel, initrd, staged }));
    return resultOf(run, kernel, initrd, result);
  } finally {
    await cleanup(run);
  }
}

async function start(options: BuildIsoOptions, reporter: Reporter, env: Env): Promise<IsoRun> {
  const started = Date.now();
  const timed = timedPhases(reporter);
  const sysroot = path.resolve(options.sysroot);
  const output = path.resolve(options.output);
  const mode = options.bootMode;
  const cmdline = kernelCommandLine(options.nfsRoot, options.cmdline);
  const cache = chooseCache(
    {
      cache: options.cache,
      cacheDir: options.cacheDir,
      maxAgeDays: options.cacheMaxAge,
      maxBytes: options.cacheMaxSize,
    },
    reporter,
    env,
  );
  return {
    options,
    reporter,
    env,
    started,
    phase: (p, work) => timed.phase(p, PHASE_TITLES[p], work),
    seconds: timed.seconds,
    sysroot,
    output,
    mode,
    cmdline,
    cache,
    scratch: await mkdtemp(path.join(os.tmpdir(), 'diskless-iso-')),
  };
}

/** kernel: the tools and loader files are there; the kernel, its version and modules. */
async function kernelAndTools(run: IsoRun): Promise<{ tools: Tools; kernel: Kernel }> {
  const { options, sysroot } = run;
  const tools = await findTools(run.mode, run.env);
  const kernel = await findKernel(sysroot, options.kernel);
  await findMkinitramfs(sysroot);
  await checkCompression(options.initramfsCompression, sysroot);
  run.reporter.info(
    `Kernel ${kernel.version}: ${kernel.image} (${kernel.modulesCount} entries in ${kernel.modulesDir})`,
  );
  return { tools, kernel };
}

interface Initrd {
  image: string;
  key: string;
  hit: boolean;
  digest: string;
  bytes: number;
  /** The cache's name, or 'off'. */
  backend: string;
}

/**
 * initramfs: the client's config adjusted, the cache key; a hit copies the cached image, a
 * miss runs mkinitramfs; either is checked for an NFS boot before it is stored.
 */
async function initramfs(run: IsoRun, kernel: Kernel): Promise<Initrd> {
  const { options, reporter, sysroot, scratch, cache } = run;
  // mkinitramfs in a chroot sees only the sysroot: its work files must lie inside it.
  const work =
    sysroot === '/'
      ? scratch
      : (run.sysrootWork = await mkdtemp(path.join(sysroot, 'tmp', 'diskless-initramfs-')));
  const config = await prepareClientConfig(options, sysroot, path.join(work, 'conf'), reporter);
  reporter.info(
    `Client config ${path.join(options.root, 'etc/initramfs-tools')}: BOOT=${config.settings.BOOT} MODULES=${config.settings.MODULES} COMPRESS=${config.settings.COMPRESS}`,
  );
  const key = cacheKey({
    kernel,
    packages: await packageVersions(sysroot),
    shared: await sharedTree(sysroot),
    config: config.entries,
    epoch: kernel.mtime,
  });
  const image = path.join(scratch, 'initrd.img');
  const restored = cache ? await cache.restore(key, image, reporter) : { hit: false as const };
  if (restored.hit) {
    reporter.info(`Cache hit (${cache?.name ?? ''}): ${key}; mkinitramfs does not run`);
  } else {
    await makeInitramfs(run, { kernel, config, key, work, image });
  }
  reporter.info(await checkClientInitramfs(image, scratch, config));
  const digest = restored.hit ? restored.meta.sha256 : await sha256File(image);
  const bytes = (await stat(image)).size;
  if (!restored.hit && cache) {
    await cache.save(
      key,
      image,
      {
        key,
        sha256: digest,
        size: bytes,
        kernelVersion: kernel.version,
        created: new Date().toISOString(),
      },
      reporter,
    );
  }
  reporter.info(`Initramfs: ${humanBytes(bytes)}, SHA-256 ${digest}`);
  return { image, key, hit: restored.hit, digest, bytes, backend: cache?.name ?? 'off' };
}

/** A cache miss: mkinitramfs (in the sysroot) makes the image. */
async function makeInitramfs(
  { reporter, sysroot, cache }: IsoRun,
  o: { kernel: Kernel; config: PreparedConfig; key: string; work: string; image: string },
): Promise<void> {
  reporter.info(
    `Cache ${cache ? `miss (${cache.name})` : 'off'}: ${o.key}; running mkinitramfs${sysroot === '/' ? '' : ` in ${sysroot}`}`,
  );
  const made = path.join(o.work, 'initrd.img');
  await mkinitramfs({
    sysroot,
    config: o.config.dir,
    output: made,
    version: o.kernel.version,
    epoch: o.kernel.mtime,
    reporter,
  });
  await move(made, o.image);
}

type StagedTree = Staged & { stage: string; contents: ImageContents };

/** loaders: the ISO tree with isolinux (BIOS) and GRUB (UEFI), listed and scanned. */
async function loaders(
  run: IsoRun,
  o: { tools: Tools; kernel: Kernel; initrd: Initrd; epoch: IsoEpoch },
): Promise<StagedTree> {
  const { options, reporter, scratch, mode, cmdline } = run;
  const { kernel, initrd } = o;
  const stage = path.join(scratch, 'iso');
  const label = `diskless ${kernel.version} (NFS root ${options.nfsRoot})`;
  const tag = sha256([kernel.digest, initrd.digest, cmdline, options.volumeId].join('\n')).slice(
    0,
    16,
  );
  const s = await stageTree({
    stage,
    scratch,
    tools: o.tools,
    mode,
    kernel: kernel.image,
    initrd: initrd.image,
    cmdline,
    label,
    tag,
    epoch: o.epoch.epoch,
  });
  reporter.info(
    `${mode === 'uefi' ? '' : 'isolinux (BIOS)'}${mode === 'both' ? ' and ' : ''}${mode === 'bios' ? '' : `GRUB (UEFI, ${humanBytes(s.efiBytes)} EFI binary)`}, serial console on ttyS0 at 115200`,
  );
  reporter.info(`Command line: ${cmdline}`);
  const scanStart = Date.now();
  const contents = await scanImage({ stage, scratch });
  reporter.info(
    `Listed and scanned ${contents.files} files of the ISO tree and the initramfs in ${seconds(Date.now() - scanStart)} s: no secrets`,
  );
  return { stage, contents, ...s };
}

/** iso: xorriso, reproducibly, into a temporary file beside `output`. */
async function iso(
  run: IsoRun,
  tools: Tools,
  staged: StagedTree,
  { epoch, from }: IsoEpoch,
): Promise<void> {
  const { options, output } = run;
  await mkdir(path.dirname(output), { recursive: true });
  run.partial = tempBeside(output, 'partial');
  await makeIso({
    tools,
    stage: staged.stage,
    output: run.partial,
    volumeId: options.volumeId,
    mode: run.mode,
    epoch,
  });
  run.reporter.info(
    `Volume ${options.volumeId}, dated ${new Date(epoch * 1000).toISOString()} (from ${from})`,
  );
}

/** check: the ISO read back; only then is it renamed to `output`, with <output>.sha256. */
async function check(
  run: IsoRun,
  o: { tools: Tools; kernel: Kernel; initrd: Initrd; staged: StagedTree },
): Promise<{ digest: string; size: number }> {
  const { reporter, output } = run;
  const iso = run.partial ?? '';
  const listing = await checkIso(o.tools, iso, run.scratch, {
    mode: run.mode,
    cmdline: run.cmdline,
    kernelBytes: (await stat(o.kernel.image)).size,
    initrdBytes: o.initrd.bytes,
    idFile: o.staged.idFile,
  });
  reporter.info(
    `${listing.files.size} files; boot records: ${listing.bootRecords.map((r) => `${r.platform} ${r.path}`).join(', ')}; system area: ${listing.systemArea || 'none'}`,
  );
  const digest = await sha256File(iso);
  const size = (await stat(iso)).size;
  const sumFile = `${output}.sha256`;
  // Written under a temporary name first, renamed once the ISO is in place.
  const sumTmp = tempBeside(sumFile);
  try {
    await writeFile(sumTmp, `${digest}  ${path.basename(output)}\n`, { mode: 0o644 });
    await rename(iso, output);
    run.partial = undefined;
    await rename(sumTmp, sumFile);
    await writeFileAtomic(`${output}.contents`, o.staged.contents.listing);
  } finally {
    await rm(sumTmp, { force: true });
  }
  reporter.info(`Wrote ${output} (${humanBytes(size)}) and ${sumFile}`);
  return { digest, size };
}

function resultOf(
  run: IsoRun,
  kernel: Kernel,
  initrd: Initrd,
  checked: { digest: string; size: number },
): BuildIsoResult {
  return {
    iso: run.output,
    sha256: checked.digest,
    size: checked.size,
    kernel: { version: kernel.version, image: kernel.image },
    initramfs: {
      cacheHit: initrd.hit,
      cacheKey: initrd.key,
      backend: initrd.backend,
      bytes: initrd.bytes,
    },
    mode: run.mode,
    cmdline: run.cmdline,
    phaseSeconds: Object.fromEntries(PHASES.map((p) => [p, run.seconds[p] ?? 0])) as Record<
      Phase,
      number
    >,
    milliseconds: Date.now() - run.started,
  };
}

/** The step's outputs and summary. */
export function reportBuildIso(r: BuildIsoResult): BuildIsoReport {
  const { initramfs: initrd, mode } = r;
  const phaseTimes = PHASES.map((p) => `${p} ${r.phaseSeconds[p].toFixed(2)} s`).join(', ');
  return {
    outputs: {
      iso: r.iso,
      sha256: r.sha256,
      size: r.size,
      'kernel-version': r.kernel.version,
      'initramfs-cache-hit': initrd.cacheHit,
      'cache-key': initrd.cacheKey,
    },
    summary: [
      ['Kernel', `${r.kernel.version} (${r.kernel.image})`],
      [
        'Initramfs',
        `${initrd.cacheHit ? 'cache hit' : initrd.backend === 'off' ? 'built (no cache)' : 'cache miss, built'} (${initrd.backend}), ${humanBytes(initrd.bytes)}`,
      ],
      ['Cache key', initrd.cacheKey],
      ['ISO', r.iso],
      ['Size', `${humanBytes(r.size)} (${r.size} bytes)`],
      ['SHA-256', r.sha256],
      [
        'Boot',
        mode === 'both'
          ? 'BIOS (isolinux) and UEFI (GRUB)'
          : mode === 'bios'
            ? 'BIOS (isolinux)'
            : 'UEFI (GRUB)',
      ],
      ['Command line', r.cmdline],
      ['Time per phase', phaseTimes],
      ['Duration', `${seconds(r.milliseconds)} s`],
    ],
  };
}

/** No partial ISO, no work files (in the sysroot or beside it). */
async function cleanup(run: IsoRun): Promise<void> {
  if (run.partial) await rm(run.partial, { force: true });
  if (run.sysrootWork) await rm(run.sysrootWork, { recursive: true, force: true });
  await rm(run.scratch, { recursive: true, force: true });
}
