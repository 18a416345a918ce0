/** Inputs of boot-test (action.yml and `diskless boot-test` flags). */
import { choice, filePath, integer, list } from '../inputs/fields.js';
import { defineInputs, type Options } from '../inputs/read.js';
import { defineOutputs, type ReportOf } from '../inputs/outputs.js';

/** `/nfs/path=/local/dir`: serve a local directory at the NFS path a client mounts. */
export const EXPORT_LINE = /^\/[^=\s]*=\/\S*$/;

export const bootTestInputs = defineInputs(
  {
    iso: filePath({ required: true }),
    root: filePath({ absolute: true }),
    exports: list({
      expected: 'lines of /nfs/path=/local/dir',
      item: (line) => EXPORT_LINE.test(line),
    }),
    firmware: choice(['bios', 'uefi', 'both'], { default: 'both' }),
    until: choice(['login', 'report'], { default: 'login' }),
    'boot-timeout': integer({ min: 30, max: 3600, default: '300' }),
    memory: integer({ min: 256, max: 65536, default: '1024' }),
    'work-dir': filePath({ absolute: true }),
  },
  undefined,
  {
    iso: 'The ISO from build-iso; its boot menus give the NFS server address and the root path the client mounts.',
    root: "Absolute path of the client root (release) served at the ISO's root path; by default that path itself, as on the master.",
    exports:
      "Extra NFS paths to serve, one /nfs/path=/local/dir a line; the client root's etc/fstab names the other NFS mounts (/usr, /home), each served from the same local path unless listed here.",
    firmware: 'Firmware to boot with, bios (SeaBIOS), uefi (OVMF) or both.',
    until:
      "When the boot counts as good: login (a login prompt on the serial console) or report (a unit of the client prints DISKLESS-BOOT-OK and powers off, as the boot test's template does).",
    'boot-timeout':
      'Seconds each boot may take before it fails with the end of its serial console.',
    memory: 'Guest memory in MiB.',
    'work-dir':
      "Absolute directory for the serial consoles and the NFS server's logs; by default a temporary one, removed when the test passes.",
  },
);

export type BootTestOptions = Options<typeof bootTestInputs.fields>;

/** What boot-test hands on (action.yml's outputs say the same; a test checks). */
export const bootTestOutputs = defineOutputs({
  booted: {
    type: 'string',
    description: 'The firmware the ISO booted with, comma-separated (bios,uefi).',
  },
  'bios-seconds': {
    type: 'string',
    description:
      "Seconds from QEMU's start to the check with BIOS; empty when not booted with BIOS.",
  },
  'uefi-seconds': {
    type: 'string',
    description:
      "Seconds from QEMU's start to the check with UEFI; empty when not booted with UEFI.",
  },
  'work-dir': { type: 'string', description: 'The work-dir input, where the logs are kept.' },
});

export type BootTestReport = ReportOf<typeof bootTestOutputs>;
