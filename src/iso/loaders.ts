/**
 * The ISO's tree and its boot loaders, laid out in a staging directory:
 *
 *   boot/vmlinuz, boot/initrd.img          the kernel and the client initramfs
 *   isolinux/isolinux.bin, ldlinux.c32     BIOS (isolinux 6 needs ldlinux.c32 beside it)
 *   isolinux/isolinux.cfg                  the BIOS menu
 *   boot/grub/grub.cfg                     the UEFI menu
 *   boot/grub/efiboot.img                  El Torito EFI image: a FAT image (mtools) with
 *                                          EFI/BOOT/BOOTX64.EFI from grub-mkimage
 *   boot/grub/diskless-<tag>.id            the file GRUB's embedded config searches for
 *
 * Both menus boot the same kernel with the same command line and talk on the serial
 * console too. Every tool gets SOURCE_DATE_EPOCH and fixed ids, so the tree is the same
 * for the same inputs.
 */
import { chmod, copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { childEnv, run } from '../process/run.js';
import { LOADER_FILES, type BootMode, type Tools } from './tools.js';

export const KERNEL_PATH = 'boot/vmlinuz';
export const INITRD_PATH = 'boot/initrd.img';
export const ISOLINUX_CFG = 'isolinux/isolinux.cfg';
export const GRUB_CFG = 'boot/grub/grub.cfg';
export const EFI_IMAGE = 'boot/grub/efiboot.img';
export const ISOLINUX_BIN = 'isolinux/isolinux.bin';
export const LDLINUX = 'isolinux/ldlinux.c32';
export const BOOT_CATALOG = 'boot/boot.cat';

/** The FAT volume id of the EFI image: fixed, so the image is reproducible. */
const FAT_SERIAL = 'D15C1E55';
const GRUB_MODULES = [
  'all_video',
  'configfile',
  'echo',
  'efi_gop',
  'gzio',
  'iso9660',
  'linux',
  'normal',
  'part_gpt',
  'part_msdos',
  'search',
  'search_fs_file',
  'serial',
  'terminal',
  'test',
];

/** The kernel's command line: the NFS root, DHCP, read-only, the consoles, then `extra`. */
export function kernelCommandLine(nfsRoot: string, extra: string | undefined): string {
  return [
    'console=tty0',
    'console=ttyS0,115200n8',
    'root=/dev/nfs',
    `nfsroot=${nfsRoot},vers=3,tcp`,
    'ip=dhcp',
    'ro',
    ...(extra?.trim() ? [extra.trim().replace(/\s+/g, ' ')] : []),
  ].join(' ');
}

export function isolinuxConfig(cmdline: string, label: string): string {
  return [
    'SERIAL 0 115200',
    'DEFAULT diskless',
    'PROMPT 0',
    'TIMEOUT 1',
    'LABEL diskless',
    `  SAY Booting ${label}`,
    `  KERNEL /${KERNEL_PATH}`,
    `  APPEND initrd=/${INITRD_PATH} ${cmdline}`,
    '',
  ].join('\n');
}

export function grubConfig(cmdline: string, label: string): string {
  return [
    'serial --unit=0 --speed=115200',
    'terminal_input console serial',
    'terminal_output console serial',
    'set default=0',
    'set timeout=1',
    `menuentry '${label.replace(/'/g, '')}' {`,
    `  linux /${KERNEL_PATH} ${cmdline}`,
    `  initrd /${INITRD_PATH}`,
    '}',
    '',
  ].join('\n');
}

/** The config built into the EFI binary: find this ISO by its id file, then read its menu. */
export function embeddedGrubConfig(idFile: string): string {
  return [
    `search --no-floppy --set=root --file /${idFile}`,
    'set prefix=($root)/boot/grub',
    `configfile ($root)/${GRUB_CFG}`,
    '',
  ].join('\n');
}

async function put(stage: string, rel: string, data: string | Buffer): Promise<void> {
  const file = path.join(stage, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, data, { mode: 0o644 });
}

async function copyInto(stage: string, rel: string, from: string): Promise<void> {
  const file = path.join(stage, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await copyFile(from, file);
  await chmod(file, 0o644);
}

export interface StageOptions {
  stage: string;
  /** Scratch directory outside the stage. */
  scratch: string;
  tools: Tools;
  mode: BootMode;
  kernel: string;
  initrd: string;
  cmdline: string;
  label: string;
  /** Names the id file GRUB searches for; the same inputs give the same tag. */
  tag: string;
  epoch: number;
}

export interface Staged {
  idFile: string | undefined;
  efiBytes: number;
}

/** Lays out the ISO tree in `stage`: kernel, initramfs, isolinux and the GRUB EFI image. */
export async function stageTree(o: StageOptions): Promise<Staged> {
  const env = childEnv({ SOURCE_DATE_EPOCH: String(o.epoch), MTOOLS_SKIP_CHECK: '1' });
  await copyInto(o.stage, KERNEL_PATH, o.kernel);
  await copyInto(o.stage, INITRD_PATH, o.initrd);
  if (o.mode !== 'uefi') {
    await copyInto(o.stage, ISOLINUX_BIN, LOADER_FILES.isolinuxBin.file);
    await copyInto(o.stage, LDLINUX, LOADER_FILES.ldlinux.file);
    await put(o.stage, ISOLINUX_CFG, isolinuxConfig(o.cmdline, o.label));
  }
  if (o.mode === 'bios') return { idFile: undefined, efiBytes: 0 };

  const idFile = `boot/grub/diskless-${o.tag}.id`;
  await put(o.stage, idFile, `${o.label}\n`);
  await put(o.stage, GRUB_CFG, grubConfig(o.cmdline, o.label));
  const embedded = path.join(o.scratch, 'grub-embedded.cfg');
  await writeFile(embedded, embeddedGrubConfig(idFile));
  const efi = path.join(o.scratch, 'BOOTX64.EFI');
  // grub-mkimage with the modules built in and the config embedded: unlike
  // grub-mkstandalone, whose memdisk tar records the build's clock, it is reproducible.
  await run(
    o.tools.grubMkimage,
    [
      '--format=x86_64-efi',
      `--output=${efi}`,
      '--prefix=/boot/grub',
      `--config=${embedded}`,
      ...GRUB_MODULES,
    ],
    { env, debianPackage: 'grub-common' },
  );
  const efiBytes = (await stat(efi)).size;
  // FAT12/16 with room for the binary, its directories and the FAT itself.
  const sectors = Math.ceil((efiBytes * 1.05 + 256 * 1024) / 512 / 64) * 64;
  const image = path.join(o.stage, EFI_IMAGE);
  await mkdir(path.dirname(image), { recursive: true });
  const m = { env, debianPackage: 'mtools' };
  await run(
    o.tools.mformat,
    ['-i', image, '-C', '-T', String(sectors), '-N', FAT_SERIAL, '-v', 'EFIBOOT', '::'],
    m,
  );
  await run(o.tools.mmd, ['-i', image, '::/EFI', '::/EFI/BOOT'], m);
  await run(o.tools.mcopy, ['-i', image, efi, '::/EFI/BOOT/BOOTX64.EFI'], m);
  await chmod(image, 0o644);
  return { idFile, efiBytes };
}
