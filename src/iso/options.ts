/** Inputs of build-iso (action.yml and `diskless build-iso` flags). */
import { byteSize, choice, filePath, integer, list, text } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { MODULE_NAME, moduleChoice } from './modules.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

/**
 * `host:/absolute/path`, the form klibc's nfsmount and the kernel's nfsroot= take. Neither
 * it nor `cmdline` may hold a character GRUB's script parser treats specially (quotes, $,
 * \, ;, &, |, <, >, parentheses, braces, #, backquote): isolinux passes them on as they
 * are and GRUB would not, so BIOS and UEFI would boot different command lines.
 */
export const NFS_ROOT = /^(?:\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):\/[^\s,$;&|<>(){}"'`\\#]*$/;
const CMDLINE = /^[^$;&|<>(){}"'`\\#\n]*$/;

export const buildIsoInputs = defineInputs(
  {
    root: filePath({ required: true }),
    sysroot: filePath({ absolute: true, default: '/' }),
    kernel: text({ expected: 'a kernel image path or a version like 6.1.0-28-amd64' }),
    'nfs-root': text({
      required: true,
      pattern: NFS_ROOT,
      expected:
        'host:/absolute/path without spaces, commas or GRUB metacharacters, e.g. 10.0.0.1:/srv/diskless/current',
    }),
    cmdline: text({
      pattern: CMDLINE,
      expected:
        'extra kernel arguments without quotes or any of $ ; & | < > ( ) { } # ` \\ (GRUB would read them, isolinux not)',
    }),
    output: filePath({ default: 'diskless-boot.iso' }),
    'cache-dir': filePath({}),
    cache: choice(['auto', 'local', 'github', 'off'], { default: 'auto' }),
    'cache-max-age': integer({ min: 1, max: 3650, default: '30' }),
    'cache-max-size': byteSize({ min: 1, max: 2 ** 50, default: '2G' }),
    'initramfs-modules': list({
      expected:
        'netboot (every network driver), vm (the virtual NICs virtio, e1000 and rtl8139 and the NFS client) or kernel module names, one per line',
      item: (line) => MODULE_NAME.test(line),
    }),
    'initramfs-compression': choice(['gzip', 'zstd', 'xz', 'lz4'], {}),
    'boot-mode': choice(['bios', 'uefi', 'both'], { default: 'both' }),
    'volume-id': text({
      default: 'DISKLESS',
      pattern: /^[A-Z0-9_]{1,32}$/,
      expected: 'an ISO 9660 volume id: 1 to 32 of A-Z, 0-9 and _',
    }),
  },
  // A preset mixed with module names is refused here, with the other input errors.
  (o) => void moduleChoice(o.initramfsModules),
  {
    root: "The client root from build-rootfs (its etc/initramfs-tools is used, never the master's).",
    sysroot:
      'Absolute root the kernel, its modules and initramfs-tools come from; mkinitramfs runs inside it when it is not /.',
    kernel:
      "Kernel image path or version; by default the sysroot's /vmlinuz or its newest /boot/vmlinuz-*.",
    'nfs-root':
      'NFS root the clients mount, as host:/absolute/path (e.g. 10.0.0.1:/srv/diskless/current).',
    cmdline: 'Extra kernel command-line arguments, added after the NFS root arguments.',
    output: 'Path of the ISO to write; <output>.sha256 is written beside it.',
    'cache-dir': 'Local directory for the initramfs cache on the master.',
    cache:
      "Initramfs cache backend: auto (local if cache-dir is set, else GitHub's cache where available), local, github or off.",
    'cache-max-age':
      'Days a local cache entry is kept after it was last used; older entries are pruned.',
    'cache-max-size':
      'Total size the local cache directory is pruned to, least recently used entries first (e.g. 2G).',
    'initramfs-modules':
      "Kernel modules in the initramfs: netboot (every network driver, Debian's choice for NFS roots), vm (lean, for KVM guests: the virtio, e1000 and rtl8139 NIC drivers and the NFS client) or module names, one per line. Empty: as the client's initramfs.conf says (MODULES=list is kept, anything else becomes netboot). The built image is checked for each of them.",
    'initramfs-compression':
      "Initramfs compression: gzip, zstd, xz or lz4; the sysroot must have the compressor. Empty: the client's COMPRESS, else zstd where the sysroot has it, else gzip.",
    'boot-mode': 'Firmware the ISO boots on, bios, uefi or both.',
    'volume-id': 'ISO 9660 volume id, 1 to 32 of A-Z, 0-9 and _.',
  },
);

export type BuildIsoOptions = Options<typeof buildIsoInputs.fields>;

/** What build-iso hands on (action.yml's outputs say the same; a test checks). */
export const buildIsoOutputs = defineOutputs({
  iso: { type: 'string', description: 'Absolute path of the ISO.' },
  sha256: { type: 'string', description: 'SHA-256 of the ISO, hex.' },
  size: { type: 'number', description: 'Size of the ISO in bytes.' },
  'kernel-version': { type: 'string', description: 'Version of the kernel in the ISO.' },
  'initramfs-cache-hit': {
    type: 'boolean',
    description: 'true when the initramfs came from the cache (mkinitramfs did not run).',
  },
  'cache-key': { type: 'string', description: 'Cache key of the initramfs.' },
});

export type BuildIsoReport = ReportOf<typeof buildIsoOutputs>;
