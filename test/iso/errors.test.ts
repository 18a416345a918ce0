// Each missing tool, missing piece of the sysroot or bad input gives its one clear line,
// and leaves nothing at `output`: no ISO, no .sha256, no partial file.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../../src/env.js';
import { DisklessError, InputError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build.js';
import { imageVersion } from '../../src/iso/kernel.js';
import {
  isoOptions,
  makeClient,
  mountsUnder,
  overlay,
  SAMPLE_ROOT_TIMEOUT,
  sampleRoot,
  tempDir,
} from './fixture.js';
import { recordingReporter } from '../../src/report.js';

const repo = path.resolve(import.meta.dirname, '../..');
const NFS_ROOT = '10.0.0.1:/srv/diskless/current';

let sample: string;
let client: string;
let version: string;

beforeAll(async () => {
  sample = sampleRoot();
  client = await makeClient(sample);
  const v = await imageVersion(path.join(sample, 'vmlinuz'));
  if (!v) throw new Error(`cannot read the version of ${sample}/vmlinuz`);
  version = v;
}, SAMPLE_ROOT_TIMEOUT);

/**
 * Runs a build (in `env`, by default this process's) that must fail; returns its message
 * after checking nothing was left.
 */
async function fails(inputs: Record<string, string>, env: Env = process.env): Promise<string> {
  const out = await tempDir('out');
  const output = path.join(out, 'boot.iso');
  let error: unknown;
  try {
    await buildIso(
      isoOptions({ 'nfs-root': NFS_ROOT, output, ...inputs }),
      recordingReporter(),
      env,
    );
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DisklessError);
  expect(await readdir(out)).toEqual([]);
  const message = (error as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

/** A sysroot with the sample's kernel image under `name`, and `modules` when given. */
async function fakeSysroot(o: { name?: string; modules?: boolean }): Promise<string> {
  const root = await tempDir('fake-sysroot');
  await mkdir(path.join(root, 'boot'));
  await mkdir(path.join(root, 'tmp'));
  await copyFile(
    path.join(sample, 'boot', `vmlinuz-${version}`),
    path.join(root, 'boot', o.name ?? `vmlinuz-${version}`),
  );
  if (o.modules) {
    await mkdir(path.join(root, 'usr/lib/modules', version), { recursive: true });
    await writeFile(path.join(root, 'usr/lib/modules', version, 'modules.dep'), '');
  }
  return root;
}

describe('build-iso refuses with one clear line and leaves no ISO', () => {
  it('a sysroot without a kernel', async () => {
    const sysroot = await tempDir('empty-sysroot');
    expect(await fails({ root: client, sysroot })).toBe(
      `No kernel in ${sysroot}: no /vmlinuz and no /boot/vmlinuz-*; install the Debian package linux-image-amd64 there, or give the kernel input`,
    );
  });

  it('a kernel version that is not installed', async () => {
    expect(await fails({ root: client, sysroot: sample, kernel: '6.1.0-99-amd64' })).toBe(
      `kernel 6.1.0-99-amd64: no ${sample}/boot/vmlinuz-6.1.0-99-amd64; install the Debian package linux-image-6.1.0-99-amd64 in ${sample}`,
    );
  });

  it('a kernel without its modules', async () => {
    const sysroot = await fakeSysroot({});
    expect(await fails({ root: client, sysroot })).toMatch(
      new RegExp(
        `^kernel ${version} has no modules in .*install the Debian package linux-image-${version}`,
      ),
    );
  });

  it('a kernel image whose version differs from its name', async () => {
    const sysroot = await fakeSysroot({ name: 'vmlinuz-6.1.0-99-amd64', modules: true });
    expect(await fails({ root: client, sysroot })).toContain(
      `its header says version ${version} but its name says 6.1.0-99-amd64`,
    );
  });

  it('a sysroot without initramfs-tools', async () => {
    const sysroot = await fakeSysroot({ modules: true });
    expect(await fails({ root: client, sysroot })).toBe(
      `initramfs-tools is not installed in ${sysroot} (no mkinitramfs); install the Debian package initramfs-tools in ${sysroot}`,
    );
  });

  it('a client root without etc/initramfs-tools', async () => {
    const root = await tempDir('bare-client');
    expect(await fails({ root, sysroot: sample })).toMatch(
      /^The client root .* has no etc\/initramfs-tools directory/,
    );
  });

  it('a local cache without a cache directory', async () => {
    expect(await fails({ root: client, sysroot: sample, cache: 'local' })).toMatch(
      /^Input "cache-dir" is required when input "cache" is local/,
    );
  });

  it('an nfs-root that is not host:/absolute/path', () => {
    expect(() => isoOptions({ root: client, 'nfs-root': '10.0.0.1:srv/diskless' })).toThrow(
      InputError,
    );
    expect(() => isoOptions({ root: client, 'nfs-root': 'server/path' })).toThrow(
      /Input "nfs-root": got "server\/path"; expected host:\/absolute\/path/,
    );
  });

  describe('missing programs', () => {
    /** A PATH with every program of /usr/bin and /usr/sbin except `hidden`. */
    async function pathWithout(hidden: string[]): Promise<string> {
      const bin = await tempDir('bin');
      for (const dir of ['/usr/bin', '/usr/sbin']) {
        for (const name of await readdir(dir)) {
          if (hidden.includes(name)) continue;
          await symlink(path.join(dir, name), path.join(bin, name)).catch(() => undefined);
        }
      }
      return bin;
    }

    it('xorriso', async () => {
      const env = { ...process.env, PATH: await pathWithout(['xorriso']) };
      expect(await fails({ root: client, sysroot: sample }, env)).toBe(
        'xorriso (not on PATH) is missing; install the Debian package xorriso',
      );
    });

    it('mtools', async () => {
      const env = { ...process.env, PATH: await pathWithout(['mformat', 'mmd', 'mcopy']) };
      expect(await fails({ root: client, sysroot: sample }, env)).toBe(
        'mformat (not on PATH), mmd (not on PATH), mcopy (not on PATH) are missing; install the Debian package mtools',
      );
    });
  });

  describe('missing loader files (hidden in a private mount namespace)', () => {
    /** Runs the CLI with `dir` covered by an empty tmpfs; returns its exit code and stderr. */
    async function cliWithout(
      dir: string,
      args: string[],
    ): Promise<{ code: number; stderr: string }> {
      const script = 'mount -t tmpfs none "$0" && exec "$@"';
      try {
        await promisify(execFile)(
          'unshare',
          [
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-c',
            script,
            dir,
            process.execPath,
            '--import',
            'tsx',
            path.join(repo, 'src/cli/main.ts'),
            'build-iso',
            ...args,
          ],
          { cwd: repo },
        );
        return { code: 0, stderr: '' };
      } catch (e) {
        const err = e as { code: number; stderr: string };
        return { code: err.code, stderr: err.stderr };
      }
    }

    it.each([
      [
        '/usr/lib/ISOLINUX',
        'bios',
        /\/usr\/lib\/ISOLINUX\/isolinux\.bin, \/usr\/lib\/ISOLINUX\/isohdpfx\.bin are missing; install the Debian package isolinux$/m,
      ],
      [
        '/usr/lib/syslinux/modules/bios',
        'bios',
        /ldlinux\.c32 is missing; install the Debian package syslinux-common$/m,
      ],
      [
        '/usr/lib/grub/x86_64-efi',
        'uefi',
        /GRUB's EFI modules \(\/usr\/lib\/grub\/x86_64-efi\) is missing; install the Debian package grub-efi-amd64-bin$/m,
      ],
    ])('%s (boot-mode %s)', async (dir, mode, message) => {
      const out = await tempDir('out');
      const r = await cliWithout(dir, [
        '--root',
        client,
        '--sysroot',
        sample,
        '--nfs-root',
        NFS_ROOT,
        '--boot-mode',
        mode,
        '--output',
        path.join(out, 'boot.iso'),
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(await readdir(out)).toEqual([]);
    });
  });

  it('a failing mkinitramfs: its error, /proc unmounted, no work files, no ISO', async () => {
    const sysroot = await overlay(sample);
    try {
      const failing = await makeClient(
        sample,
        '#!/bin/sh\n[ "$1" = prereqs ] && exit 0\necho "hook broke" >&2\nexit 3\n',
      );
      const message = await fails({ root: failing, sysroot: sysroot.root, cache: 'off' });
      expect(message).toMatch(
        /^chroot .* mkinitramfs .* exited with code \d+: .*diskless-test-extra failed with return 3/,
      );
      expect(await mountsUnder(sysroot.root)).toEqual([sysroot.root]);
      const left = await readdir(path.join(sysroot.root, 'tmp'));
      expect(left.filter((n) => n.startsWith('diskless-initramfs'))).toEqual([]);
    } finally {
      sysroot.remove();
    }
  });
});
