/**
 * The host programs and files the ISO is made with, and the Debian package of each.
 * They are looked up before any slow work starts, so a missing one fails the build at
 * once with one line naming what to install, not after a minute of mkinitramfs.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Env } from '../env.js';
import { DisklessError } from '../errors.js';

export type BootMode = 'bios' | 'uefi' | 'both';

/** A program the build runs on the host, found on PATH. */
interface Program {
  name: string;
  debianPackage: string;
  for: 'iso' | 'uefi';
}

const PROGRAMS: readonly Program[] = [
  { name: 'xorriso', debianPackage: 'xorriso', for: 'iso' },
  // The initramfs content check unpacks the image with initramfs-tools' own tool.
  { name: 'unmkinitramfs', debianPackage: 'initramfs-tools-core', for: 'iso' },
  { name: 'grub-mkimage', debianPackage: 'grub-common', for: 'uefi' },
  { name: 'mformat', debianPackage: 'mtools', for: 'uefi' },
  { name: 'mmd', debianPackage: 'mtools', for: 'uefi' },
  { name: 'mcopy', debianPackage: 'mtools', for: 'uefi' },
];

/** Where Debian's packages put the boot loader files. */
export const LOADER_FILES = {
  isolinuxBin: { file: '/usr/lib/ISOLINUX/isolinux.bin', debianPackage: 'isolinux' },
  isohybridMbr: { file: '/usr/lib/ISOLINUX/isohdpfx.bin', debianPackage: 'isolinux' },
  ldlinux: { file: '/usr/lib/syslinux/modules/bios/ldlinux.c32', debianPackage: 'syslinux-common' },
  grubEfiModules: {
    file: '/usr/lib/grub/x86_64-efi/linux.mod',
    debianPackage: 'grub-efi-amd64-bin',
  },
} as const;

/** The paths of the programs the build runs (absolute, found on PATH). */
export interface Tools {
  xorriso: string;
  grubMkimage: string;
  mformat: string;
  mmd: string;
  mcopy: string;
}

/** Whether this process may use `file` in `mode` (constants.X_OK, R_OK). */
function can(file: string, mode: number): Promise<boolean> {
  return access(file, mode).then(
    () => true,
    () => false,
  );
}

/** The program's path on `searchPath` (a PATH value), or undefined. */
async function which(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(':')) {
    if (dir === '') continue;
    const file = path.join(dir, name);
    if (await can(file, constants.X_OK)) return file;
  }
  return undefined;
}

function installLine(what: string[], packages: string[]): string {
  const unique = [...new Set(packages)].sort();
  return `${what.join(', ')} ${what.length === 1 ? 'is' : 'are'} missing; install the Debian package${unique.length === 1 ? '' : 's'} ${unique.join(' ')}`;
}

/**
 * Finds every program (on `env`'s PATH) and loader file the boot mode needs; throws one
 * DisklessError naming all that are missing and the Debian packages that provide them.
 */
export async function findTools(mode: BootMode, env: Env): Promise<Tools> {
  const uefi = mode !== 'bios';
  const bios = mode !== 'uefi';
  const missing: string[] = [];
  const packages: string[] = [];
  const found: Record<string, string> = {};
  for (const p of PROGRAMS) {
    if (p.for === 'uefi' && !uefi) continue;
    const file = await which(p.name, env.PATH ?? '');
    if (file) found[p.name] = file;
    else {
      missing.push(`${p.name} (not on PATH)`);
      packages.push(p.debianPackage);
    }
  }
  const files = [
    ...(bios ? [LOADER_FILES.isolinuxBin, LOADER_FILES.ldlinux] : []),
    LOADER_FILES.isohybridMbr,
    ...(uefi ? [LOADER_FILES.grubEfiModules] : []),
  ];
  for (const f of files) {
    if (await can(f.file, constants.R_OK)) continue;
    missing.push(
      f === LOADER_FILES.grubEfiModules ? `GRUB's EFI modules (${path.dirname(f.file)})` : f.file,
    );
    packages.push(f.debianPackage);
  }
  if (missing.length > 0) throw new DisklessError(installLine(missing, packages));
  return {
    xorriso: found.xorriso ?? 'xorriso',
    grubMkimage: found['grub-mkimage'] ?? 'grub-mkimage',
    mformat: found.mformat ?? 'mformat',
    mmd: found.mmd ?? 'mmd',
    mcopy: found.mcopy ?? 'mcopy',
  };
}
