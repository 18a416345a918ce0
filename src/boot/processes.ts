/**
 * The programs a boot test starts (rpcbind, nfs-ganesha, QEMU), tracked by pid so that
 * every one of them is stopped again, in reverse order, even when the test fails or is
 * interrupted: SIGTERM first, SIGKILL when it has not exited after a grace period.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { openSync, closeSync } from 'node:fs';
import { DisklessError } from '../errors.js';
import { childEnv, showCommand, spawnError } from '../process/run.js';

export interface Started {
  name: string;
  pid: number;
  /** Settles with the exit code (or the signal's name) when the program exits. */
  exited: Promise<number | string>;
  /** True once the program has exited. */
  done: () => boolean;
}

interface Entry {
  started: Started;
  child: ChildProcess;
}

export interface StartOptions {
  /** File that gets the program's stdout and stderr (appended). */
  log?: string;
  env?: NodeJS.ProcessEnv;
  /** The Debian package that provides the program, named when it is missing. */
  debianPackage?: string;
}

export class Processes {
  private readonly entries: Entry[] = [];

  /** Starts a program in the background; rejects when it cannot be started at all. */
  async start(
    name: string,
    cmd: string,
    args: readonly string[],
    o: StartOptions = {},
  ): Promise<Started> {
    const fd = o.log ? openSync(o.log, 'a') : undefined;
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        stdio: ['ignore', fd ?? 'ignore', fd ?? 'ignore'],
        env: o.env ?? childEnv(),
      });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    let finished = false;
    const exited = new Promise<number | string>((resolve) => {
      child.once('exit', (code, signal) => {
        finished = true;
        resolve(code ?? signal ?? -1);
      });
    });
    // events.once rejects when the child emits 'error' (e.g. ENOENT) instead of 'spawn'.
    const failure = await once(child, 'spawn').then(
      () => undefined,
      (error: unknown) => error as NodeJS.ErrnoException,
    );
    if (failure) throw spawnError(cmd, args, failure, o.debianPackage);
    const pid = child.pid;
    if (pid === undefined) throw new DisklessError(`${showCommand(cmd, args)}: no process id`);
    const started: Started = { name, pid, exited, done: () => finished };
    this.entries.push({ started, child });
    return started;
  }

  /** Pids of the programs started and still running. */
  running(): { name: string; pid: number }[] {
    return this.entries
      .filter((e) => !e.started.done())
      .map((e) => ({ name: e.started.name, pid: e.started.pid }));
  }

  /** Stops one program by its pid: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(started: Started, graceMs = 5000): Promise<void> {
    const entry = this.entries.find((e) => e.started === started);
    if (!entry || started.done()) return;
    entry.child.kill('SIGTERM');
    const timer = sleep(graceMs, 'timeout' as const, { ref: false });
    if ((await Promise.race([started.exited, timer])) === 'timeout' && !started.done()) {
      entry.child.kill('SIGKILL');
      await started.exited;
    }
  }

  /** Stops every program still running, the last started first. */
  async stopAll(): Promise<void> {
    for (const e of [...this.entries].reverse()) await this.stop(e.started);
  }
}

/**
 * Runs `work` with a fresh process list and stops everything it started afterwards, also
 * on SIGINT, SIGTERM or SIGHUP (then the process exits with 128 + the signal's number).
 */
export async function withProcesses<T>(work: (p: Processes) => Promise<T>): Promise<T> {
  const p = new Processes();
  const signals = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const [signal, number] of Object.entries(signals) as [NodeJS.Signals, number][]) {
    const handler = (): void => {
      process.stderr.write(`\n${signal}: stopping ${String(p.running().length)} program(s)\n`);
      void p.stopAll().finally(() => process.exit(128 + number));
    };
    handlers.set(signal, handler);
    process.once(signal, handler);
  }
  try {
    return await work(p);
  } finally {
    await p.stopAll();
    for (const [signal, handler] of handlers) process.removeListener(signal, handler);
  }
}
