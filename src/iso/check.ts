/**
 * Reads the finished ISO back with xorriso before it is handed on: its files (kernel and
 * initramfs of the right sizes, loader files), its El Torito boot records, its isohybrid
 * MBR, the loader configs with the expected command line, and the EFI image's binary and
 * the config built into it. A failure names everything that is missing or wrong.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { childEnv, run } from '../process/run.js';
import {
  EFI_IMAGE,
  GRUB_CFG,
  INITRD_PATH,
  ISOLINUX_BIN,
  ISOLINUX_CFG,
  KERNEL_PATH,
  LDLINUX,
} from './loaders.js';
import type { BootMode, Tools } from './tools.js';

export interface IsoListing {
  /** Absolute paths inside the ISO and their sizes. */
  files: Map<string, number>;
  /** El Torito records: platform (BIOS, UEFI) to the image's path. */
  bootRecords: { platform: string; path: string }[];
  /** xorriso's one-line summary of the system area, e.g. "MBR isohybrid cyl-align-on GPT". */
  systemArea: string;
}

/** Lists the ISO: files with sizes, El Torito records and the system area summary. */
export async function listIso(xorriso: string, iso: string): Promise<IsoListing> {
  const { stdout } = await run(
    xorriso,
    [
      '-indev',
      iso,
      '-report_el_torito',
      'plain',
      '-report_system_area',
      'plain',
      '-find',
      '/',
      '-type',
      'f',
      '-exec',
      'lsdl',
      '--',
    ],
    { debianPackage: 'xorriso' },
  );
  const files = new Map<string, number>();
  const numbered = new Map<string, { platform?: string; path?: string }>();
  let systemArea = '';
  for (const line of stdout.split('\n')) {
    const file = /^\S+\s+\d+\s+\S+\s+\S+\s+(\d+)\s+.*?'(\/.*)'$/.exec(line);
    if (file?.[1] && file[2]) files.set(file[2].replace(/'"'"'/g, "'"), Number(file[1]));
    const img = /^El Torito boot img :\s+(\d+)\s+(\S+)/.exec(line);
    if (img?.[1] && img[2]) numbered.set(img[1], { ...numbered.get(img[1]), platform: img[2] });
    const imgPath = /^El Torito img path :\s+(\d+)\s+(\S.*)$/.exec(line);
    if (imgPath?.[1] && imgPath[2]) {
      numbered.set(imgPath[1], { ...numbered.get(imgPath[1]), path: imgPath[2].trim() });
    }
    const area = /^System area summary:\s*(.*)$/.exec(line);
    if (area?.[1]) systemArea = area[1].trim();
  }
  const bootRecords = [...numbered.values()].map((r) => ({
    platform: r.platform ?? '?',
    path: r.path ?? '?',
  }));
  return { files, bootRecords, systemArea };
}

/** Copies files out of the ISO: [path in the ISO, local path] pairs, in one xorriso run. */
export async function extractFromIso(
  xorriso: string,
  iso: string,
  pairs: [string, string][],
): Promise<void> {
  if (pairs.length === 0) return;
  await run(
    xorriso,
    ['-indev', iso, '-osirrox', 'on', ...pairs.flatMap(([from, to]) => ['-extract', from, to])],
    { debianPackage: 'xorriso' },
  );
}

export interface Expected {
  mode: BootMode;
  cmdline: string;
  kernelBytes: number;
  initrdBytes: number;
  idFile: string | undefined;
}

/** Checks the ISO; returns its listing, or throws naming every problem found. */
export async function checkIso(
  tools: Tools,
  iso: string,
  scratch: string,
  want: Expected,
): Promise<IsoListing> {
  const listing = await listIso(tools.xorriso, iso);
  const problems = checkListing(listing, want);
  problems.push(...(await checkBootFiles(tools, iso, scratch, listing, want)));
  if (problems.length > 0) {
    throw new DisklessError(`The ISO failed its check: ${problems.join('; ')}`);
  }
  return listing;
}

/** The files, their sizes, the El Torito boot records and the isohybrid MBR. */
function checkListing(listing: IsoListing, want: Expected): string[] {
  const problems: string[] = [];
  const bios = want.mode !== 'uefi';
  const uefi = want.mode !== 'bios';
  const expectFile = (rel: string, bytes?: number) => {
    const size = listing.files.get(`/${rel}`);
    if (size === undefined) problems.push(`no /${rel}`);
    else if (bytes !== undefined && size !== bytes) {
      problems.push(`/${rel} has ${size} bytes, not ${bytes}`);
    }
  };
  expectFile(KERNEL_PATH, want.kernelBytes);
  expectFile(INITRD_PATH, want.initrdBytes);
  const record = (platform: string, image: string) => {
    if (!listing.bootRecords.some((r) => r.platform === platform && r.path === `/${image}`)) {
      problems.push(`no ${platform} El Torito boot record for /${image}`);
    }
  };
  if (bios) {
    expectFile(ISOLINUX_BIN);
    expectFile(LDLINUX);
    expectFile(ISOLINUX_CFG);
    record('BIOS', ISOLINUX_BIN);
    if (!/\bMBR isohybrid\b/.test(listing.systemArea)) {
      problems.push(`no isohybrid MBR (system area: ${listing.systemArea || 'empty'})`);
    }
  }
  if (uefi) {
    expectFile(EFI_IMAGE);
    expectFile(GRUB_CFG);
    if (want.idFile) expectFile(want.idFile);
    record('UEFI', EFI_IMAGE);
  }
  return problems;
}

/** The loaders' configs and the EFI image, extracted from the ISO and read. */
async function checkBootFiles(
  tools: Tools,
  iso: string,
  scratch: string,
  listing: IsoListing,
  want: Expected,
): Promise<string[]> {
  const bios = want.mode !== 'uefi';
  const uefi = want.mode !== 'bios';
  const problems: string[] = [];
  const dir = await mkdtemp(path.join(scratch, 'check-'));
  try {
    const wanted: [string, string][] = [];
    if (bios && listing.files.has(`/${ISOLINUX_CFG}`)) {
      wanted.push([`/${ISOLINUX_CFG}`, path.join(dir, 'isolinux.cfg')]);
    }
    if (uefi && listing.files.has(`/${GRUB_CFG}`)) {
      wanted.push([`/${GRUB_CFG}`, path.join(dir, 'grub.cfg')]);
    }
    if (uefi && listing.files.has(`/${EFI_IMAGE}`)) {
      wanted.push([`/${EFI_IMAGE}`, path.join(dir, 'efiboot.img')]);
    }
    await extractFromIso(tools.xorriso, iso, wanted);
    const has = (file: string) => wanted.some(([, to]) => to === path.join(dir, file));
    if (has('isolinux.cfg')) {
      const cfg = await readFile(path.join(dir, 'isolinux.cfg'), 'utf8');
      problems.push(...checkIsolinuxCfg(cfg, want));
    }
    if (has('grub.cfg')) {
      const cfg = await readFile(path.join(dir, 'grub.cfg'), 'utf8');
      problems.push(...checkGrubCfg(cfg, want));
    }
    if (has('efiboot.img')) problems.push(...(await checkEfiImage(tools, dir, want)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return problems;
}

function checkIsolinuxCfg(cfg: string, want: Expected): string[] {
  const problems: string[] = [];
  if (!cfg.split('\n').some((l) => l.trim() === `APPEND initrd=/${INITRD_PATH} ${want.cmdline}`)) {
    problems.push(`/${ISOLINUX_CFG} does not boot with the command line "${want.cmdline}"`);
  }
  if (!/^SERIAL 0 115200$/m.test(cfg)) problems.push(`/${ISOLINUX_CFG} has no serial console`);
  return problems;
}

function checkGrubCfg(cfg: string, want: Expected): string[] {
  const problems: string[] = [];
  const lines = cfg.split('\n').map((l) => l.trim());
  if (!lines.includes(`linux /${KERNEL_PATH} ${want.cmdline}`)) {
    problems.push(`/${GRUB_CFG} does not boot with the command line "${want.cmdline}"`);
  }
  if (!lines.includes(`initrd /${INITRD_PATH}`)) problems.push(`/${GRUB_CFG} loads no initramfs`);
  if (!lines.includes('terminal_output console serial')) {
    problems.push(`/${GRUB_CFG} has no serial console`);
  }
  return problems;
}

/** The EFI image holds GRUB, and that GRUB searches for the ISO's id file. */
async function checkEfiImage(tools: Tools, dir: string, want: Expected): Promise<string[]> {
  const efi = path.join(dir, 'BOOTX64.EFI');
  try {
    await run(tools.mcopy, ['-i', path.join(dir, 'efiboot.img'), '::/EFI/BOOT/BOOTX64.EFI', efi], {
      env: childEnv({ MTOOLS_SKIP_CHECK: '1' }),
      debianPackage: 'mtools',
    });
    const binary = await readFile(efi);
    if (want.idFile && !binary.includes(`--file /${want.idFile}`)) {
      return [`the EFI image's GRUB does not search for /${want.idFile}`];
    }
    return [];
  } catch {
    return [`/${EFI_IMAGE} has no EFI/BOOT/BOOTX64.EFI`];
  }
}
