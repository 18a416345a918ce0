/**
 * Fixtures of the build-iso tests: the sample master root (scripts/sample-root, made once
 * with debootstrap and cached), private overlay copies of it to use as sysroots, client
 * roots with their own etc/initramfs-tools, and readers of what a build leaves behind.
 */
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readInputs } from '../../src/inputs/read.js';
import { buildIsoInputs, type BuildIsoOptions } from '../../src/iso/options.js';
import { tempDir } from '../helpers/temp.js';

const repo = path.resolve(import.meta.dirname, '../..');

/** Sample root creation takes about 2 minutes the first time; then it is reused. */
export const SAMPLE_ROOT_TIMEOUT = 15 * 60_000;

/** The Debian releases scripts/sample-root makes; trixie is its default, bookworm the older. */
export type Suite = 'bookworm' | 'trixie';

/** The sample root of `suite`; the older tests keep bookworm, the root they were written on. */
export function sampleRoot(suite: Suite = 'bookworm'): string {
  return execFileSync(path.join(repo, 'scripts/sample-root'), ['--suite', suite], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export { tempDir };

/** A writable view of `lower` (overlayfs): changes and /proc mounts stay private to it. */
export async function overlay(lower: string): Promise<{ root: string; remove: () => void }> {
  const base = await tempDir('sysroot');
  const [upper, work, root] = ['upper', 'work', 'root'].map((d) => path.join(base, d)) as [
    string,
    string,
    string,
  ];
  for (const d of [upper, work, root]) await mkdir(d);
  execFileSync('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
    root,
  ]);
  return {
    root,
    remove: () => {
      execFileSync('umount', [root]);
      execFileSync('rm', ['-rf', '--one-file-system', base]);
    },
  };
}

const HOOK_LOG = 'tmp/diskless-test-hook-runs';
export const CLIENT_MARK = 'DISKLESS_TEST_CLIENT_CONFIG=1';

const COUNTING_HOOK = `#!/bin/sh
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
echo run >> /${HOOK_LOG}
`;

/**
 * A client root holding only etc/initramfs-tools: the sysroot's own, plus a conf.d file
 * that marks it as the client's, MODULES=list with a cloud server's drivers, and a hook
 * that counts mkinitramfs runs in the sysroot's /tmp.
 */
export async function makeClient(sysroot: string, extraHook?: string): Promise<string> {
  const root = await tempDir('client');
  const conf = path.join(root, 'etc/initramfs-tools');
  await mkdir(path.dirname(conf), { recursive: true });
  await cp(path.join(sysroot, 'etc/initramfs-tools'), conf, { recursive: true });
  const initramfsConf = path.join(conf, 'initramfs.conf');
  const text = await readFile(initramfsConf, 'utf8');
  await writeFile(initramfsConf, text.replace(/^MODULES=.*$/m, 'MODULES=list'));
  await writeFile(path.join(conf, 'modules'), 'virtio_net\ne1000\nnfs\nnfsv3\n');
  await writeFile(path.join(conf, 'conf.d/diskless-test'), `${CLIENT_MARK}\n`);
  await writeFile(path.join(conf, 'hooks/diskless-test-count'), COUNTING_HOOK);
  await chmod(path.join(conf, 'hooks/diskless-test-count'), 0o755);
  if (extraHook !== undefined) {
    await writeFile(path.join(conf, 'hooks/diskless-test-extra'), extraHook);
    await chmod(path.join(conf, 'hooks/diskless-test-extra'), 0o755);
  }
  return root;
}

/** How many times mkinitramfs ran the client's hooks in `sysroot`. */
export async function hookRuns(sysroot: string): Promise<number> {
  try {
    return (await readFile(path.join(sysroot, HOOK_LOG), 'utf8')).split('\n').filter(Boolean)
      .length;
  } catch {
    return 0;
  }
}

/** Options as the action or CLI would read them from these inputs. */
export function isoOptions(inputs: Record<string, string>): BuildIsoOptions {
  return readInputs(buildIsoInputs, (name) => inputs[name]);
}

/** Mount points at or under `dir`, from this process's mount table. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Runs xorriso on an ISO and returns its stdout. */
export function xorriso(iso: string, ...args: string[]): string {
  return execFileSync('xorriso', ['-indev', iso, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Extracts one file of an ISO and returns its text. */
export async function isoFile(iso: string, file: string): Promise<string> {
  const dir = await tempDir('extract');
  const dest = path.join(dir, path.basename(file));
  xorriso(iso, '-osirrox', 'on', '-extract', file, dest);
  return readFile(dest, 'utf8');
}
