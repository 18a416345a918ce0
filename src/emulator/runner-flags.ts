/**
 * The flags that make an emulator's servers boot for real (--run-servers and the QEMU
 * runner's settings), shared by the ElasticStack and the Proxmox front ends so that both
 * read, check and describe them alike; and the runner they ask for.
 */
import path from 'node:path';
import type { NfsExport } from '../boot/nfs.js';
import { EXPORT_LINE } from '../boot/options.js';
import { slirpNetwork } from '../boot/qemu.js';
import { InputError } from '../errors.js';
import { bool, choice, custom, each, filePath, text } from '../inputs/fields.js';
import { streamReporter } from '../report.js';
import { startQemuRunner, type QemuRunner, type QemuRunnerOptions } from './qemu-runner.js';

export const runnerFields = {
  'run-servers': bool({ default: 'false' }),
  'nfs-export': each(text({ pattern: EXPORT_LINE, expected: '/nfs/path=/local/dir' }), {}),
  'nfs-server': custom(
    {
      default: '10.0.2.100',
      expected: 'an IPv4 address',
    },
    (raw) => {
      slirpNetwork(raw); // checks it, with one clear line
      return raw;
    },
  ),
  firmware: choice(['bios', 'uefi'], {
    default: 'bios',
    expected: 'bios or uefi',
  }),
  work: filePath({}),
};

export const runnerDescriptions = {
  'run-servers': 'boot started servers in QEMU',
  'nfs-export': 'P=DIR: serve DIR at the NFS path P the clients mount',
  'nfs-server': "the NFS server's address in the CDs' nfsroot=",
  firmware: 'bios or uefi',
  work: "consoles (DIR/consoles/<server>.log) and the NFS server's files (default DATA/runner)",
};

/** The runner's flags, shown in their own part of --help. */
export const RUNNER_FLAGS = Object.keys(runnerFields);

/** What the runner's flags read as. */
export interface RunnerFlags {
  runServers: boolean;
  nfsExport: string[];
  nfsServer: string;
  firmware: 'bios' | 'uefi';
  work: string | undefined;
}

/** The check across the runner's flags: booting servers needs something to serve them. */
export function checkRunnerFlags(o: RunnerFlags): void {
  if (o.runServers && o.nfsExport.length === 0) {
    throw new InputError(
      'nfs-export',
      'Flag --run-servers needs --nfs-export /nfs/path=/local/dir: expected what the CDs mount',
    );
  }
}

/** With --run-servers, the QEMU runner to start (its work directory below `data`). */
export function runnerOptions(o: RunnerFlags, data: string): QemuRunnerOptions | undefined {
  if (!o.runServers) return undefined;
  const exports: NfsExport[] = o.nfsExport.map((v) => {
    const eq = v.indexOf('=');
    return { pseudo: v.slice(0, eq), dir: v.slice(eq + 1) };
  });
  return {
    work: o.work ?? path.join(data, 'runner'),
    nfsServer: o.nfsServer,
    exports,
    firmware: o.firmware,
  };
}

/** Starts the runner asked for, its progress on stderr (stdout is for the key=value lines). */
async function startRunner(runner: QemuRunnerOptions | undefined): Promise<QemuRunner | undefined> {
  if (!runner) return undefined;
  return startQemuRunner({
    ...runner,
    reporter: streamReporter((l) => {
      console.error(l);
    }),
  });
}

/**
 * Starts the runner asked for, then the emulator on it (`start` is given the runner, if
 * any); a failed start of the emulator stops the runner again.
 */
export async function startWithRunner<E>(
  runner: QemuRunnerOptions | undefined,
  start: (qemu: QemuRunner | undefined) => Promise<E>,
): Promise<{ emulator: E; qemu: QemuRunner | undefined }> {
  const qemu = await startRunner(runner);
  try {
    return { emulator: await start(qemu), qemu };
  } catch (error) {
    await qemu?.close();
    throw error;
  }
}

/** The lines a started runner adds to the command's key=value output. */
export function runnerLines(
  runner: QemuRunnerOptions | undefined,
  qemu: QemuRunner | undefined,
): string[] {
  return [
    ...(runner ? [`consoles=${path.join(runner.work, 'consoles')}`] : []),
    ...(qemu ? [`network=${qemu.network}.0/24`] : []),
  ];
}
