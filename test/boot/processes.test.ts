import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { Processes, withProcesses, type Started } from '../../src/boot/processes.js';
import { tempDir } from '../helpers/temp.js';

/** True while a process with this pid exists (and is not a zombie we could still signal). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let dir: string;
let procs: Processes;

beforeEach(async () => {
  dir = await tempDir('boot-procs');
  procs = new Processes();
});

afterEach(async () => {
  await procs.stopAll();
  await rm(dir, { recursive: true, force: true });
});

/** Waits until `file` contains `text` (a started shell says it has set its traps). */
async function waitFor(file: string, text: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const got = await readFile(file, 'utf8').catch(() => '');
    if (got.includes(text)) return;
    await sleep(20);
  }
  throw new Error(`${file} never contained ${text}`);
}

describe('Processes.start', () => {
  it('rejects a missing command, naming the Debian package that provides it', async () => {
    const start = procs.start('ganesha', 'diskless-no-such-program', ['-F'], {
      debianPackage: 'nfs-ganesha-vfs',
    });
    await expect(start).rejects.toThrow(DisklessError);
    await expect(start).rejects.toThrow(
      'diskless-no-such-program: command not found; install the Debian package nfs-ganesha-vfs',
    );
    expect(procs.running()).toEqual([]);
  });

  it('names the command as the package when none is given', async () => {
    await expect(procs.start('x', 'diskless-no-such-program', [])).rejects.toThrow(
      'install the Debian package diskless-no-such-program',
    );
  });

  it("appends the program's stdout and stderr to its log", async () => {
    const log = path.join(dir, 'out.log');
    const first = await procs.start('a', 'sh', ['-c', 'echo one; echo two >&2'], { log });
    expect(await first.exited).toBe(0);
    const second = await procs.start('b', 'sh', ['-c', 'echo three'], { log });
    await second.exited;
    const text = await readFile(log, 'utf8');
    expect(text.split('\n').sort()).toEqual(['', 'one', 'three', 'two']);
    expect(text.endsWith('three\n')).toBe(true);
  });

  it('reports the exit code and done() once the program exits', async () => {
    const p = await procs.start('exit', 'sh', ['-c', 'exit 7']);
    expect(p.pid).toBeGreaterThan(0);
    expect(p.name).toBe('exit');
    expect(await p.exited).toBe(7);
    expect(p.done()).toBe(true);
    expect(procs.running()).toEqual([]);
  });

  it('passes the environment it is given', async () => {
    const log = path.join(dir, 'env.log');
    const p = await procs.start('env', 'sh', ['-c', 'echo "$DISKLESS_TEST_VALUE"'], {
      log,
      env: { ...process.env, DISKLESS_TEST_VALUE: 'from-the-test' },
    });
    await p.exited;
    expect(await readFile(log, 'utf8')).toBe('from-the-test\n');
  });
});

describe('Processes.stop', () => {
  it('stops a program with SIGTERM', async () => {
    const p = await procs.start('sleep', 'sleep', ['30']);
    expect(procs.running()).toEqual([{ name: 'sleep', pid: p.pid }]);
    await procs.stop(p, 10_000);
    expect(p.done()).toBe(true);
    expect(await p.exited).toBe('SIGTERM');
    expect(alive(p.pid)).toBe(false);
    expect(procs.running()).toEqual([]);
  });

  it('kills a program that ignores SIGTERM after the grace period', async () => {
    const log = path.join(dir, 'stubborn.log');
    // exec keeps the ignored TERM: no orphaned sleep is left behind by the SIGKILL.
    const p = await procs.start(
      'stubborn',
      'sh',
      ['-c', 'trap "" TERM; echo ready; exec sleep 30'],
      {
        log,
      },
    );
    await waitFor(log, 'ready');
    await procs.stop(p, 200);
    expect(await p.exited).toBe('SIGKILL');
    expect(alive(p.pid)).toBe(false);
  });

  it('does nothing for a program that has already exited', async () => {
    const p = await procs.start('quick', 'sh', ['-c', 'exit 0']);
    await p.exited;
    await procs.stop(p);
    expect(await p.exited).toBe(0);
  });

  it('does nothing for a program another list started', async () => {
    const other = new Processes();
    const p = await other.start('sleep', 'sleep', ['30']);
    try {
      await procs.stop(p, 100);
      expect(p.done()).toBe(false);
      expect(alive(p.pid)).toBe(true);
    } finally {
      await other.stopAll();
    }
    expect(p.done()).toBe(true);
  });
});

describe('Processes.stopAll', () => {
  it('stops every running program, the last started first', async () => {
    const order = path.join(dir, 'order');
    const started: Started[] = [];
    for (const name of ['rpcbind', 'ganesha', 'qemu']) {
      const log = path.join(dir, `${name}.log`);
      // On TERM: note the name, stop the background sleep, exit.
      const script = `trap 'echo ${name} >> "$1"; kill $!; exit 0' TERM; sleep 30 & echo ready; wait`;
      started.push(await procs.start(name, 'sh', ['-c', script, 'sh', order], { log }));
      await waitFor(log, 'ready');
    }
    const finished = await procs.start('finished', 'sh', ['-c', 'exit 0']);
    await finished.exited;
    expect(procs.running().map((r) => r.name)).toEqual(['rpcbind', 'ganesha', 'qemu']);
    expect(procs.running().map((r) => r.pid)).toEqual(started.map((s) => s.pid));

    await procs.stopAll();

    expect(procs.running()).toEqual([]);
    expect((await readFile(order, 'utf8')).trim().split('\n')).toEqual([
      'qemu',
      'ganesha',
      'rpcbind',
    ]);
    for (const s of started) {
      expect(await s.exited).toBe(0);
      expect(alive(s.pid)).toBe(false);
    }
  });
});

describe('withProcesses', () => {
  it("returns work's value and stops what work left running", async () => {
    let started: Started | undefined;
    const value = await withProcesses(async (p) => {
      started = await p.start('sleep', 'sleep', ['30']);
      return 42;
    });
    expect(value).toBe(42);
    expect(started?.done()).toBe(true);
    expect(alive(started?.pid ?? 0)).toBe(false);
  });

  it('stops what work started when work throws, and passes the error on', async () => {
    const started: Started[] = [];
    const run = withProcesses(async (p) => {
      started.push(await p.start('rpcbind', 'sleep', ['30']));
      started.push(await p.start('qemu', 'sleep', ['30']));
      throw new DisklessError('boot failed');
    });
    await expect(run).rejects.toThrow('boot failed');
    expect(started).toHaveLength(2);
    for (const s of started) {
      expect(s.done()).toBe(true);
      expect(alive(s.pid)).toBe(false);
    }
  });

  it('removes its signal handlers afterwards', async () => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const before = signals.map((s) => process.listenerCount(s));
    let during: number[] = [];
    await withProcesses(() => {
      during = signals.map((s) => process.listenerCount(s));
      return Promise.resolve();
    });
    expect(during).toEqual(before.map((n) => n + 1));
    expect(signals.map((s) => process.listenerCount(s))).toEqual(before);
    await expect(withProcesses(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(signals.map((s) => process.listenerCount(s))).toEqual(before);
  });
});
