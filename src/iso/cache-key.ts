/**
 * The initramfs cache key: a hash of everything that changes the image mkinitramfs makes.
 *
 *   kernel       version, image digest, the modules directory's contents list
 *   tools        the versions of initramfs-tools and of the packages whose files it copies
 *                into the image (busybox, klibc, udev, kmod, libc, compressors), and
 *                every file of the sysroot's usr/share/initramfs-tools (hooks, scripts)
 *   client       every file (path, mode, content) of the adjusted copy of the client's
 *                etc/initramfs-tools, including hooks, scripts and the BOOT, MODULES and
 *                COMPRESS this build set
 *   date         SOURCE_DATE_EPOCH given to mkinitramfs (the image's timestamps)
 */
import path from 'node:path';
import { sha256 } from '../files.js';
import { listTree, type TreeEntry } from './initramfs.js';
import type { Kernel } from './kernel.js';

/** Bumped when the way the initramfs is made changes for the same inputs. */
export const KEY_FORMAT = 1;

/** Packages whose files mkinitramfs copies into a BOOT=nfs image on Debian. */
export const IMAGE_PACKAGES = [
  'initramfs-tools',
  'initramfs-tools-core',
  'klibc-utils',
  'libklibc',
  'busybox',
  'udev',
  'kmod',
  'libkmod2',
  'libc6',
  'zstd',
  'gzip',
  'xz-utils',
  'lz4',
];

export interface KeyInputs {
  kernel: Pick<Kernel, 'version' | 'digest' | 'modulesDigest'>;
  packages: Map<string, string>;
  /** The sysroot's usr/share/initramfs-tools, listed. */
  shared: TreeEntry[];
  /** The adjusted client config, listed. */
  config: TreeEntry[];
  epoch: number;
}

export async function sharedTree(sysroot: string): Promise<TreeEntry[]> {
  try {
    return await listTree(path.join(sysroot, 'usr/share/initramfs-tools'));
  } catch {
    return [];
  }
}

function treeText(entries: readonly TreeEntry[]): string {
  return entries.map((e) => `${e.kind} ${e.mode.toString(8)} ${e.rel} ${e.content}`).join('\n');
}

/** `diskless-initramfs-<kernel version>-<sha256 of the inputs>`: also a valid GitHub cache key. */
export function cacheKey(k: KeyInputs): string {
  const packages = IMAGE_PACKAGES.map((p) => `${p}=${k.packages.get(p) ?? '-'}`).join('\n');
  const digest = sha256(
    [
      `format ${KEY_FORMAT}`,
      `kernel ${k.kernel.version} ${k.kernel.digest} ${k.kernel.modulesDigest}`,
      `epoch ${k.epoch}`,
      `packages\n${packages}`,
      `shared\n${treeText(k.shared)}`,
      `config\n${treeText(k.config)}`,
    ].join('\n\n'),
  );
  return `diskless-initramfs-${k.kernel.version}-${digest}`;
}
