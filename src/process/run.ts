/**
 * Runs a program without a shell and captures its output. A non-zero exit becomes a
 * DisklessError naming the command, its exit code and the last lines of its stderr, so
 * a failing tool explains itself in one line.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { DisklessError } from '../errors.js';

export interface RunOptions {
  /** Exit codes that count as success besides 0 (e.g. rsync's 24, "files vanished"). */
  okCodes?: readonly number[];
  env?: NodeJS.ProcessEnv;
  /** Called with each complete line of stdout as it arrives. */
  onLine?: (line: string) => void;
  /** The Debian package that provides the program, named when it is missing. */
  debianPackage?: string;
  /** Written to the program's stdin (a list it reads with `-`, instead of a temporary file). */
  input?: string;
  /**
   * Only the sha256 of stdout is wanted (a listing compared with an earlier one): it is
   * hashed as it streams in, never held whole, and `stdout` is empty.
   */
  digestStdout?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The sha256 of stdout, hex, with `digestStdout`. */
  stdoutSha256?: string;
}

/** The program and its arguments, quoted only where needed, for messages. */
export function showCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/** The last non-empty lines of a program's output or log, joined on one line. */
export function lastLines(text: string, lines = 3): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .slice(-lines)
    .join(' / ');
}

/** Why a program could not be started: a missing one names its Debian package. */
export function spawnError(
  cmd: string,
  args: readonly string[],
  error: NodeJS.ErrnoException,
  debianPackage: string | undefined,
): DisklessError {
  return new DisklessError(
    error.code === 'ENOENT'
      ? `${cmd}: command not found; install the Debian package ${debianPackage ?? cmd}`
      : `${showCommand(cmd, args)}: ${error.message}`,
  );
}

/**
 * A child's environment: this process's, with `extra` set. The programs the library runs
 * inherit the process environment (locale, proxies, TMPDIR, the PATH their own helpers
 * need): they are real tools, run as the user would run them. What the library decides
 * itself (who ran, the epoch, the cache and state directories, where the ISO tools are
 * found) comes from the step's env instead (src/env.ts). The lint rule against process.env
 * in src/ allows it here (eslint.config.js).
 */
export function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}

export function run(
  cmd: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? childEnv(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const digest = options.digestStdout ? createHash('sha256') : undefined;
    let partial = '';
    child.stdout.on('data', (b: Buffer) => {
      if (digest) digest.update(b);
      else out.push(b);
      if (!options.onLine) return;
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) options.onLine(line);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(spawnError(cmd, args, error, options.debianPackage));
    });
    child.on('close', (code, signal) => {
      if (partial !== '' && options.onLine) options.onLine(partial);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      const exit = code ?? -1;
      if (exit === 0 || options.okCodes?.includes(exit)) {
        resolve({ code: exit, stdout, stderr, stdoutSha256: digest?.digest('hex') });
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${exit}`;
      const why = lastLines(stderr);
      reject(new DisklessError(`${showCommand(cmd, args)} ${how}${why ? `: ${why}` : ''}`));
    });
    child.stdin.on('error', () => undefined); // a program that does not read its stdin
    child.stdin.end(options.input);
  });
}
