import { appendFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Processes, type Started } from '../../src/boot/processes.js';
import {
  BOOT_OK,
  readLog,
  reportLines,
  tail,
  watchSerial,
  type BootUntil,
  type WatchEnd,
} from '../../src/boot/serial.js';
import { tempDir } from '../helpers/temp.js';

// Boot noise as a serial console shows it: CRLF line ends, kernel timestamps.
const NOISE = [
  'SeaBIOS (version 1.16.2-debian-1.16.2-1)',
  '[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)',
  'Begin: Running /scripts/nfs-premount ... done.',
  '[  OK  ] Reached target multi-user.target - Multi-User System.',
].join('\r\n');

let dir: string;
let log: string;
let procs: Processes;

beforeEach(async () => {
  dir = await tempDir('boot-serial');
  log = path.join(dir, 'serial.log');
  procs = new Processes();
});

afterEach(async () => {
  await procs.stopAll();
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in for QEMU that runs until it is stopped. */
function fakeQemu(): Promise<Started> {
  return procs.start('qemu', 'sleep', ['30']);
}

function watch(qemu: Started, until: BootUntil, timeoutMs = 10_000): Promise<WatchEnd> {
  return watchSerial({ log, qemu, until, timeoutMs, startedAt: Date.now() });
}

describe('watchSerial', () => {
  it('succeeds in report mode once the BOOT_OK line is appended to the log', async () => {
    await writeFile(log, `${NOISE}\r\n`);
    const qemu = await fakeQemu();
    let settled = false;
    const end = watch(qemu, 'report').finally(() => {
      settled = true;
    });
    await sleep(400);
    // Boot noise alone is no success.
    expect(settled).toBe(false);
    await appendFile(log, `DISKLESS-REPORT hostname node1\r\n${BOOT_OK}\r\n`);
    const result = await end;
    expect(result.ok).toBe(true);
    expect(result.seconds).toBeGreaterThanOrEqual(0);
    // The watch ends on the console, not on QEMU: it is still running.
    expect(qemu.done()).toBe(false);
  });

  it('succeeds in login mode on a login prompt', async () => {
    await writeFile(log, `${NOISE}\r\n\r\nDebian GNU/Linux 12 node1 ttyS0\r\n\r\nnode1 login: `);
    const result = await watch(await fakeQemu(), 'login');
    expect(result).toMatchObject({ ok: true });
  });

  it('does not count lines that merely mention login in login mode', async () => {
    await writeFile(
      log,
      [
        NOISE,
        '         Starting systemd-logind.service - User Login Management...',
        '[  OK  ] Started systemd-logind.service - User Login Management.',
        '[  OK  ] Started serial-getty@ttyS0.service - Serial Getty on ttyS0.',
        '',
      ].join('\r\n'),
    );
    const result = await watch(await fakeQemu(), 'login', 300);
    expect(result.ok).toBe(false);
  });

  it('does not count a login prompt in report mode', async () => {
    await writeFile(log, `${NOISE}\r\nnode1 login: \r\n`);
    const result = await watch(await fakeQemu(), 'report', 300);
    expect(result).toMatchObject({
      ok: false,
      why: 'the client did not reach the check within 0.3 s',
    });
  });

  it('does not count BOOT_OK inside another line in report mode', async () => {
    // e.g. a unit whose description names the line, as systemd shows it while starting.
    await writeFile(
      log,
      `${NOISE}\r\n         Starting report.service - print ${BOOT_OK}\r\n[  5.1] echo ${BOOT_OK} failed\r\n`,
    );
    const result = await watch(await fakeQemu(), 'report', 300);
    expect(result.ok).toBe(false);
  });

  it.each([
    [
      'Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
      '[    3.141592] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)',
    ],
    [
      'ALERT!  /dev/nfs does not exist.  Dropping to a shell!',
      'ALERT!  /dev/nfs does not exist.  Dropping to a shell!  ',
    ],
    [
      'You are in emergency mode. After logging in, type "journalctl -xb" to view system logs.',
      'You are in emergency mode. After logging in, type "journalctl -xb" to view system logs.',
    ],
    [
      'Cannot open root device "nfs" or unknown-block(0,255): error -6',
      '[    2.5] VFS: Cannot open root device "nfs" or unknown-block(0,255): error -6',
    ],
  ])('fails quoting the console line "%s"', async (quoted, line) => {
    await writeFile(log, `${NOISE}\r\n${line}\r\n(initramfs) `);
    const qemu = await fakeQemu();
    const result = await watch(qemu, 'login');
    expect(result).toMatchObject({ ok: false, why: `the console says "${quoted}"` });
  });

  it("catches initramfs-tools' give-up sequence for an NFS root", async () => {
    const console = [
      NOISE,
      'Gave up waiting for root file system device.  Common problems:',
      ' - Boot args (cat /proc/cmdline)',
      'ALERT!  /dev/nfs does not exist.  Dropping to a shell!',
      '',
    ].join('\r\n');
    await writeFile(log, console);
    const result = await watch(await fakeQemu(), 'report');
    expect(result.ok).toBe(false);
    // The first line of the sequence is the one quoted.
    if (!result.ok) {
      expect(result.why).toBe(
        'the console says "Gave up waiting for root file system device.  Common problems:"',
      );
    }
  });

  it('fails naming the exit code when QEMU exits first', async () => {
    await writeFile(log, `${NOISE}\r\n`);
    const qemu = await procs.start('qemu', 'sh', ['-c', 'exit 3']);
    const result = await watch(qemu, 'login');
    expect(result).toMatchObject({
      ok: false,
      why: 'QEMU exited (3) before the client reached the check',
    });
  });

  it('fails naming the signal when QEMU is killed', async () => {
    await writeFile(log, '');
    const qemu = await procs.start('qemu', 'sh', ['-c', 'kill -KILL $$']);
    const result = await watch(qemu, 'report');
    expect(result).toMatchObject({ ok: false });
    if (!result.ok) expect(result.why).toContain('QEMU exited (SIGKILL)');
  });

  it('reads the log once more after QEMU exits: the last lines count', async () => {
    await writeFile(log, `${NOISE}\r\n`);
    // The guest prints BOOT_OK and powers off at once.
    const qemu = await procs.start('qemu', 'sh', [
      '-c',
      `printf '${BOOT_OK}\\r\\n' >> "$1"; exit 0`,
      'sh',
      log,
    ]);
    await qemu.exited;
    const result = await watch(qemu, 'report');
    expect(result.ok).toBe(true);
  });

  it('fails when time runs out, naming the limit', async () => {
    await writeFile(log, `${NOISE}\r\n`);
    const qemu = await fakeQemu();
    const result = await watch(qemu, 'login', 300);
    expect(result).toMatchObject({
      ok: false,
      why: 'the client did not reach the check within 0.3 s',
    });
    expect(qemu.done()).toBe(false);
  });

  it('waits for a log file that does not exist yet', async () => {
    const qemu = await fakeQemu();
    const end = watch(qemu, 'login');
    await sleep(300);
    await writeFile(log, 'node1 login: ');
    expect((await end).ok).toBe(true);
  });
});

describe('readLog', () => {
  it('drops carriage returns and reads a missing file as empty', async () => {
    await writeFile(log, 'a\r\nb\r\r\nc');
    expect(await readLog(log)).toBe('a\nb\nc');
    expect(await readLog(path.join(dir, 'missing.log'))).toBe('');
  });
});

describe('reportLines', () => {
  it('parses DISKLESS-REPORT lines in order, with console noise before the prefix', () => {
    const text = [
      'DISKLESS-REPORT begin',
      'DISKLESS-REPORT hostname node1',
      '[   12.345678] systemd[1]: Started foo.DISKLESS-REPORT uptime 12.34',
      'some unrelated line',
      'DISKLESS-REPORT mount 10.0.2.100:/srv/diskless/current / nfs ro,vers=3',
      'DISKLESS-REPORT failed ',
      'DISKLESS-REPORT end',
      'DISKLESS-BOOT-OK',
    ].join('\n');
    expect(reportLines(text)).toEqual([
      { key: 'begin', value: '' },
      { key: 'hostname', value: 'node1' },
      { key: 'uptime', value: '12.34' },
      { key: 'mount', value: '10.0.2.100:/srv/diskless/current / nfs ro,vers=3' },
      { key: 'failed', value: '' },
      { key: 'end', value: '' },
    ]);
  });

  it('finds nothing in a log without report lines', () => {
    expect(reportLines('node1 login: \nDISKLESS-REPORTER x y\n')).toEqual([]);
  });

  it('reads a CRLF log through readLog without carriage returns in values', async () => {
    await writeFile(log, 'DISKLESS-REPORT system running\r\nDISKLESS-REPORT begin\r\n');
    expect(reportLines(await readLog(log))).toEqual([
      { key: 'system', value: 'running' },
      { key: 'begin', value: '' },
    ]);
  });
});

describe('tail', () => {
  const text = Array.from({ length: 50 }, (_, i) => `line ${i + 1}`).join('\n') + '\n\n';

  it('returns the last N lines, ignoring trailing blank lines', () => {
    expect(tail(text, 3)).toBe('line 48\nline 49\nline 50');
  });

  it('returns the last 40 lines by default', () => {
    const lines = tail(text).split('\n');
    expect(lines).toHaveLength(40);
    expect(lines[0]).toBe('line 11');
    expect(lines.at(-1)).toBe('line 50');
  });

  it('returns everything when the log is shorter', () => {
    expect(tail('a\nb', 10)).toBe('a\nb');
  });
});
