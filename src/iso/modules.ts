/**
 * Which kernel modules the client's initramfs carries (build-iso's `initramfs-modules`).
 * Debian's MODULES=netboot copies every network driver there is (25 MiB of a 35 MiB ISO);
 * a cloud server has one of a few virtual NICs. The `vm` preset lists exactly what an NFS
 * boot of a KVM guest needs, so the image is a quarter of the size:
 *
 *   netboot   MODULES=netboot: every network driver (Debian's choice for NFS roots)
 *   vm        MODULES=list: the virtual NICs ElasticStack offers (virtio, e1000,
 *             rtl8139), the PCI transport of virtio, packet sockets for DHCP, the NFS
 *             client; mkinitramfs adds what they depend on (sunrpc, lockd, failover, ...)
 *   names     MODULES=list with these modules (and their dependencies)
 *   (empty)   as the client's initramfs.conf says (build-iso's rule: list stays, else netboot)
 *
 * The chosen names are appended to the copy of the client's `modules` file, which
 * mkinitramfs reads in every MODULES mode; the content check then expects each of them.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../errors.js';
import { exists } from '../files.js';
import type { Reporter } from '../report.js';
import { COMPRESSORS, listTree, prepareConfig, type PreparedConfig } from './initramfs.js';
import type { BuildIsoOptions } from './options.js';

export const MODULE_PRESETS = ['netboot', 'vm'] as const;
export type ModulePreset = (typeof MODULE_PRESETS)[number];

/** The drivers of the NIC models an ElasticStack server can have (nic:0:model). */
export const VM_NIC_DRIVERS = ['virtio_net', 'e1000', '8139too', '8139cp'] as const;

/** The NFS client, for root=/dev/nfs with vers=3 (the kernel command line build-iso writes). */
export const NFS_MODULES = ['nfs', 'nfsv3', 'sunrpc'] as const;

/** The `vm` preset: what a KVM guest needs to reach its NFS root, and nothing else. */
export const VM_MODULES = ['virtio_pci', ...VM_NIC_DRIVERS, 'af_packet', ...NFS_MODULES] as const;

/** A module name as modprobe takes it. */
export const MODULE_NAME = /^[A-Za-z0-9_-]+$/;

export interface ModuleChoice {
  /** What the copied initramfs.conf says; undefined: as the client's config says. */
  setting: 'netboot' | 'list' | undefined;
  /** Names appended to the config's `modules` file. */
  names: readonly string[];
  /** How the build log names the choice. */
  label: string;
}

/** Reads the `initramfs-modules` input's lines (already split and trimmed). */
export function moduleChoice(lines: readonly string[]): ModuleChoice {
  const [first, ...more] = lines;
  if (first === undefined) return { setting: undefined, names: [], label: "the client's" };
  const preset = MODULE_PRESETS.find((p) => p === first);
  if (preset && more.length > 0) {
    throw new InputError(
      'initramfs-modules',
      `Input "initramfs-modules": got the preset ${preset} and ${more.length} more line(s); expected one preset (${MODULE_PRESETS.join(' | ')}) or module names, one per line`,
    );
  }
  if (preset === 'netboot') return { setting: 'netboot', names: [], label: 'netboot' };
  if (preset === 'vm') return { setting: 'list', names: VM_MODULES, label: 'vm preset' };
  return { setting: 'list', names: lines, label: `list of ${lines.length}` };
}

/** Appends `names` to `<configDir>/modules` (the client's own entries stay first). */
export async function writeModuleList(configDir: string, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const file = path.join(configDir, 'modules');
  const before = (await exists(file)) ? await readFile(file, 'utf8') : '';
  const text = before === '' || before.endsWith('\n') ? before : `${before}\n`;
  await writeFile(
    file,
    `${text}# Added by diskless build-iso (initramfs-modules)\n${names.join('\n')}\n`,
    { mode: 0o644 },
  );
}

/** The module names a config's `modules` file lists (comments and options left out). */
export function listedModules(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim().split(/\s+/)[0] ?? '')
    .filter((name) => MODULE_NAME.test(name));
}

/**
 * The modules the content check expects: the NFS client, each module the config's
 * `modules` file lists, and with MODULES=netboot the drivers of ElasticStack's NIC models.
 */
export async function requiredModules(configDir: string, setting: string): Promise<string[]> {
  const file = path.join(configDir, 'modules');
  const listed = (await exists(file)) ? listedModules(await readFile(file, 'utf8')) : [];
  const nics = setting === 'netboot' ? VM_NIC_DRIVERS : [];
  return [...new Set([...NFS_MODULES, ...nics, ...listed])];
}

/**
 * Fails when the asked-for compressor is not in the sysroot: an explicit choice is never
 * silently replaced (the client's own COMPRESS still falls back, with a warning).
 */
export async function checkCompression(
  compression: string | undefined,
  sysroot: string,
): Promise<void> {
  if (compression === undefined) return;
  const tool = COMPRESSORS[compression] ?? '';
  if (await exists(path.join(sysroot, tool))) return;
  throw new InputError(
    'initramfs-compression',
    `Input "initramfs-compression": got "${compression}", but ${sysroot} has no /${tool}; expected a compressor installed there (install the Debian package ${compression === 'xz' ? 'xz-utils' : compression} in the sysroot, or choose gzip)`,
  );
}

/**
 * The client's config prepared for mkinitramfs (initramfs.ts) with build-iso's module and
 * compression choices applied: MODULES and COMPRESS set, the chosen names in `modules`.
 */
export async function prepareClientConfig(
  options: Pick<BuildIsoOptions, 'root' | 'initramfsModules' | 'initramfsCompression'>,
  sysroot: string,
  dest: string,
  reporter: Reporter,
): Promise<PreparedConfig> {
  const modules = moduleChoice(options.initramfsModules);
  const config = await prepareConfig(options.root, sysroot, dest, reporter, {
    ...(modules.setting && { MODULES: modules.setting }),
    ...(options.initramfsCompression && { COMPRESS: options.initramfsCompression }),
  });
  if (modules.names.length === 0) return config;
  await writeModuleList(config.dir, modules.names);
  reporter.info(`Initramfs modules: ${modules.label} (${modules.names.join(' ')})`);
  return { ...config, entries: await listTree(config.dir) };
}
