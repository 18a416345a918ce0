/**
 * The boot-test step: boots the ISO once per firmware against its release served over
 * NFS, and reports the boot times and what the client reported. Every program it starts
 * is stopped again, also on failure or Ctrl-C; the logs stay in the work directory when
 * a boot fails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../report.js';
import { bootTest } from './boot-test.js';
import type { BootTestOptions, BootTestReport } from './options.js';
import { withProcesses } from './processes.js';
import { FIRMWARE_NAMES, FIRMWARES, type Firmware } from './qemu.js';
import { REPORT_PREFIX } from './serial.js';

export async function runBootTest(o: BootTestOptions, reporter: Reporter): Promise<BootTestReport> {
  const work = o.workDir ?? (await mkdtemp(path.join(os.tmpdir(), 'diskless-boot-')));
  reporter.info(`boot test: serial consoles and server logs in ${work}`);
  const results = await withProcesses((procs) =>
    bootTest(
      procs,
      {
        iso: o.iso,
        root: o.root,
        exports: o.exports.map((line) => {
          const eq = line.indexOf('=');
          return { pseudo: line.slice(0, eq), dir: line.slice(eq + 1) };
        }),
        firmware: o.firmware === 'both' ? FIRMWARES : [o.firmware],
        until: o.until,
        timeoutSeconds: o.bootTimeout,
        memoryMiB: o.memory,
        work,
      },
      reporter,
    ),
  );
  for (const r of results) {
    if (r.report.length === 0) continue;
    await reporter.group(`What the client reported (${r.firmware})`, () => {
      for (const line of r.report) {
        reporter.info(`${r.firmware}: ${REPORT_PREFIX} ${line.key} ${line.value}`);
      }
      return Promise.resolve();
    });
  }
  // A passing test's logs are only kept where the caller asked for them.
  if (!o.workDir) await rm(work, { recursive: true, force: true });
  const seconds = (fw: Firmware): string =>
    String(results.find((r) => r.firmware === fw)?.seconds ?? '');
  const hostname = results[0]?.report.find((l) => l.key === 'hostname')?.value;
  return {
    outputs: {
      booted: results.map((r) => r.firmware).join(','),
      'bios-seconds': seconds('bios'),
      'uefi-seconds': seconds('uefi'),
      'work-dir': o.workDir ?? '',
    },
    summary: [
      ['ISO', o.iso],
      ...results.map((r): [string, string] => [
        `${FIRMWARE_NAMES[r.firmware]} boot`,
        `ok in ${String(r.seconds)} s (QEMU start to ${o.until === 'report' ? 'the report' : 'the login prompt'})`,
      ]),
      ...(hostname ? [['Client host name', hostname] as [string, string]] : []),
    ],
  };
}
