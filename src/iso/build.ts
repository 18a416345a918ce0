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
 */
import { copyFile, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { humanBytes, timedPhases, type Reporter, type StepReport } from '../report.js';
import { chooseCache } from './cache.js';
import { cacheKey, sharedTree } from './cache-key.js';
import { checkIso } from './check.js';
import { seconds, sha256, sha256File, tempBeside, writeFileAtomic } from '../files.js';
import { findMkinitramfs, mkinitramfs, packageVersions } from './initramfs.js';
import { scanImage } from './image-scan.js';
import { checkClientInitramfs } from './initramfs-check.js';
import { checkCompression, prepareClientConfig } from './modules.js';
import { makeIso } from './iso.js';
import { findKernel } from './kernel.js';
import { kernelCommandLine, stageTree } from './loaders.js';
import type { BuildIsoOptions } from './options.js';
import { findTools } from './tools.js';

/** The phases in order, each with the title of its log group (the bench times them by it). */
export const PHASE_TITLES = {
  kernel: 'Kernel and tools',
  initramfs: 'Initramfs',
  loaders: 'Boot loaders',
  iso: 'ISO image',
  check: 'Check the ISO',
} as const;
export type Phase = keyof typeof PHASE_TITLES;
export const PHASES = Object.keys(PHASE_TITLES) as Phase[];

/** SOURCE_DATE_EPOCH when set, else the kernel image's date: never the clock. */
function isoEpoch(kernelMtime: number): { epoch: number; from: string } {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env && /^\d{1,12}$/.test(env.trim())) {
    return { epoch: Number(env.trim()), from: 'SOURCE_DATE_EPOCH' };
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

/** Builds the bootable ISO: client initramfs (cached), kernel, BIOS and UEFI loaders. */
export async function buildIso(options: BuildIsoOptions, reporter: Reporter): Promise<StepReport> {
  const started = Date.now();
  const timed = timedPhases(reporter);
  const phase = <T>(p: Phase, work: () => Promise<T>) => timed.phase(p, PHASE_TITLES[p], work);
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
  );

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'diskless-iso-'));
  let sysrootWork: string | undefined;
  let partial: string | undefined;
  try {
    const { tools, kernel } = await phase('kernel', async () => {
      const tools = await findTools(mode);
      const kernel = await findKernel(sysroot, options.kernel);
      await findMkinitramfs(sysroot);
      await checkCompression(options.initramfsCompression, sysroot);
      reporter.info(
        `Kernel ${kernel.version}: ${kernel.image} (${kernel.modulesCount} entries in ${kernel.modulesDir})`,
      );
      return { tools, kernel };
    });
    const { epoch, from } = isoEpoch(kernel.mtime);

    const initrd = await phase('initramfs', async () => {
      // mkinitramfs in a chroot sees only the sysroot: its work files must lie inside it.
      const work =
        sysroot === '/'
          ? scratch
          : (sysrootWork = await mkdtemp(path.join(sysroot, 'tmp', 'diskless-initramfs-')));
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
        reporter.info(
          `Cache ${cache ? `miss (${cache.name})` : 'off'}: ${key}; running mkinitramfs${sysroot === '/' ? '' : ` in ${sysroot}`}`,
        );
        const made = path.join(work, 'initrd.img');
        await mkinitramfs({
          sysroot,
          config: config.dir,
          output: made,
          version: kernel.version,
          epoch: kernel.mtime,
          reporter,
        });
        await move(made, image);
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
    });

    const staged = await phase('loaders', async () => {
      const stage = path.join(scratch, 'iso');
      const label = `diskless ${kernel.version} (NFS root ${options.nfsRoot})`;
      const tag = sha256(
        [kernel.digest, initrd.digest, cmdline, options.volumeId].join('\n'),
      ).slice(0, 16);
      const s = await stageTree({
        stage,
        scratch,
        tools,
        mode,
        kernel: kernel.image,
        initrd: initrd.image,
        cmdline,
        label,
        tag,
        epoch,
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
    });

    await phase('iso', async () => {
      await mkdir(path.dirname(output), { recursive: true });
      partial = tempBeside(output, 'partial');
      await makeIso({
        tools,
        stage: staged.stage,
        output: partial,
        volumeId: options.volumeId,
        mode,
        epoch,
      });
      reporter.info(
        `Volume ${options.volumeId}, dated ${new Date(epoch * 1000).toISOString()} (from ${from})`,
      );
    });

    const result = await phase('check', async () => {
      const iso = partial ?? '';
      const listing = await checkIso(tools, iso, scratch, {
        mode,
        cmdline,
        kernelBytes: (await stat(kernel.image)).size,
        initrdBytes: initrd.bytes,
        idFile: staged.idFile,
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
        partial = undefined;
        await rename(sumTmp, sumFile);
        await writeFileAtomic(`${output}.contents`, staged.contents.listing);
      } finally {
        await rm(sumTmp, { force: true });
      }
      reporter.info(`Wrote ${output} (${humanBytes(size)}) and ${sumFile}`);
      return { digest, size };
    });

    const phaseTimes = PHASES.map((p) => `${p} ${(timed.seconds[p] ?? 0).toFixed(2)} s`).join(', ');
    return {
      outputs: {
        iso: output,
        sha256: result.digest,
        size: result.size,
        'kernel-version': kernel.version,
        'initramfs-cache-hit': initrd.hit,
        'cache-key': initrd.key,
      },
      summary: [
        ['Kernel', `${kernel.version} (${kernel.image})`],
        [
          'Initramfs',
          `${initrd.hit ? 'cache hit' : initrd.backend === 'off' ? 'built (no cache)' : 'cache miss, built'} (${initrd.backend}), ${humanBytes(initrd.bytes)}`,
        ],
        ['Cache key', initrd.key],
        ['ISO', output],
        ['Size', `${humanBytes(result.size)} (${result.size} bytes)`],
        ['SHA-256', result.digest],
        [
          'Boot',
          mode === 'both'
            ? 'BIOS (isolinux) and UEFI (GRUB)'
            : mode === 'bios'
              ? 'BIOS (isolinux)'
              : 'UEFI (GRUB)',
        ],
        ['Command line', cmdline],
        ['Time per phase', phaseTimes],
        ['Duration', `${seconds(Date.now() - started)} s`],
      ],
    };
  } finally {
    if (partial) await rm(partial, { force: true });
    if (sysrootWork) await rm(sysrootWork, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
}
