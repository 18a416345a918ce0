/**
 * Watching a guest's serial console log: the boot succeeded when the success line
 * appears, and failed when a known failure line appears, QEMU exits first, or time runs
 * out. The guest reports facts as `DISKLESS-REPORT <key> <value>` lines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import type { Started } from './processes.js';

export const REPORT_PREFIX = 'DISKLESS-REPORT';
export const BOOT_OK = 'DISKLESS-BOOT-OK';

/** report: the client's report unit prints BOOT_OK; login: a login prompt on the console. */
export type BootUntil = 'report' | 'login';

const SUCCESS: Record<BootUntil, RegExp> = {
  report: new RegExp(`^${BOOT_OK}\\s*$`, 'm'),
  login: /^\S+ login: ?/m,
};

/** Lines after which the boot cannot succeed. */
const FAILURES: readonly RegExp[] = [
  /Kernel panic - not syncing.*/,
  /Gave up waiting for root.*/,
  /ALERT! .*/,
  /You are in emergency mode.*/,
  /Cannot open root device.*/,
];

export type WatchEnd = { ok: true; seconds: number } | { ok: false; seconds: number; why: string };

export async function readLog(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.replace(/\r/g, '');
}

/** Waits for the success line of `until` in `log` while `qemu` runs. */
export async function watchSerial(o: {
  log: string;
  qemu: Started;
  until: BootUntil;
  timeoutMs: number;
  startedAt: number;
}): Promise<WatchEnd> {
  const seconds = (): number => Math.round((Date.now() - o.startedAt) / 100) / 10;
  for (;;) {
    // Read once more after QEMU exits: the last lines may land between two polls.
    const exited = o.qemu.done();
    const text = await readLog(o.log);
    if (SUCCESS[o.until].test(text)) {
      return { ok: true, seconds: seconds() };
    }
    for (const failure of FAILURES) {
      const m = failure.exec(text);
      if (m) return { ok: false, seconds: seconds(), why: `the console says "${m[0].trim()}"` };
    }
    if (exited) {
      return {
        ok: false,
        seconds: seconds(),
        why: `QEMU exited (${String(await o.qemu.exited)}) before the client reached the check`,
      };
    }
    if (Date.now() - o.startedAt > o.timeoutMs) {
      return {
        ok: false,
        seconds: seconds(),
        why: `the client did not reach the check within ${o.timeoutMs / 1000} s`,
      };
    }
    await sleep(250);
  }
}

/** The `DISKLESS-REPORT key value` lines of a log, in order. */
export function reportLines(text: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  for (const line of text.split('\n')) {
    const i = line.indexOf(`${REPORT_PREFIX} `);
    if (i < 0) continue;
    const rest = line.slice(i + REPORT_PREFIX.length + 1).trim();
    const sp = rest.indexOf(' ');
    out.push(
      sp < 0 ? { key: rest, value: '' } : { key: rest.slice(0, sp), value: rest.slice(sp + 1) },
    );
  }
  return out;
}

/** The last `lines` lines of a serial log, for a failure message. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
