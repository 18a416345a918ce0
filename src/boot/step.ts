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
import { bootTest, type BootResult } from './boot-test.js';
import type { BootTestOptions, BootTestReport } from './options.js';
import { withProcesses } from './processes.js';
import { FIRMWARE_NAMES, FIRMWARES, type Firmware } from './qemu.js';
import { REPORT_PREFIX, type BootUntil } from './serial.js';

/** What the boot test saw: the step's result, which reportBootTest turns into its report. */
export interface BootTestResult {
  iso: string;
  until: BootUntil;
  /** Where the logs stay: the work-dir input, when given. */
  workDir: string | undefined;
  /** One per firmware booted, in order. */
  boots: BootResult[];
}

export async function runBootTest(o: BootTestOptions, reporter: Reporter): Promise<BootTestResult> {
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
  return { iso: o.iso, until: o.until, workDir: o.workDir, boots: results };
}

/** The step's outputs and summary. */
export function reportBootTest(r: BootTestResult): BootTestReport {
  const results = r.boots;
  const seconds = (fw: Firmware): string =>
    String(results.find((b) => b.firmware === fw)?.seconds ?? '');
  const hostname = results[0]?.report.find((l) => l.key === 'hostname')?.value;
  return {
    outputs: {
      booted: results.map((b) => b.firmware).join(','),
      'bios-seconds': seconds('bios'),
      'uefi-seconds': seconds('uefi'),
      'work-dir': r.workDir ?? '',
    },
    summary: [
      ['ISO', r.iso],
      ...results.map((b): [string, string] => [
        `${FIRMWARE_NAMES[b.firmware]} boot`,
        `ok in ${String(b.seconds)} s (QEMU start to ${r.until === 'report' ? 'the report' : 'the login prompt'})`,
      ]),
      ...(hostname ? [['Client host name', hostname] as [string, string]] : []),
    ],
  };
}
