// The initramfs content check on real images: the vm preset built with real mkinitramfs in
// the bookworm and trixie sample roots passes (trixie's image is two archives); the same
// image repacked with a module, the mount helper or BOOT=nfs taken out fails, naming it;
// a build asking for a module the kernel lacks fails without writing an ISO. Also the
// initramfs-modules and initramfs-compression inputs: the lean image, and bad values.
import { execFileSync } from 'node:child_process';
import { readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisklessError, InputError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build.js';
import { checkInitramfs } from '../../src/iso/initramfs-check.js';
import { NFS_MODULES, VM_MODULES } from '../../src/iso/modules.js';
import { rejected } from '../helpers/errors.js';
import {
  isoOptions,
  makeClient,
  overlay,
  SAMPLE_ROOT_TIMEOUT,
  sampleRoot,
  tempDir,
  xorriso,
  type Suite,
} from './fixture.js';
import { recordingReporter } from '../../src/report.js';

const NFS_ROOT = '10.0.2.100:/srv/diskless/current';
/** Unpacking, repacking and mkinitramfs take minutes on a busy 2-core machine. */
const SLOW = 10 * 60_000;

interface Lean {
  iso: string;
  initrd: string;
  log: string;
}

/** build-iso with the vm preset and zstd; the ISO and its initramfs, copied out. */
async function buildLean(sysroot: string, client: string): Promise<Lean> {
  const out = await tempDir('lean');
  const iso = path.join(out, 'lean.iso');
  const c = recordingReporter();
  await buildIso(
    isoOptions({
      root: client,
      sysroot,
      'nfs-root': NFS_ROOT,
      output: iso,
      cache: 'off',
      'initramfs-modules': 'vm',
      'initramfs-compression': 'zstd',
    }),
    c,
    process.env,
  );
  const initrd = path.join(out, 'initrd.img');
  xorriso(iso, '-osirrox', 'on', '-extract', '/boot/initrd.img', initrd);
  return { iso, initrd, log: c.lines.join('\n') };
}

/** Unpacks a single-archive image, lets `change` edit the tree, packs it again (zstd). */
async function repacked(image: string, change: (dir: string) => Promise<void>): Promise<string> {
  const work = await tempDir('repack');
  const dir = path.join(work, 'tree');
  execFileSync('unmkinitramfs', [image, dir]);
  expect(await readdir(dir)).toContain('init'); // one archive: bookworm without microcode
  await change(dir);
  const out = path.join(work, 'initrd.img');
  execFileSync('sh', [
    '-c',
    'cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | zstd -q -3 >"$2"',
    'sh',
    dir,
    out,
  ]);
  return out;
}

/** Every file under `dir` whose name matches `pattern` (once, though lib links to usr/lib). */
async function filesNamed(dir: string, pattern: RegExp): Promise<string[]> {
  const files = (await readdir(dir, { recursive: true }))
    .filter((rel) => pattern.test(path.basename(rel)))
    .map((rel) => realpath(path.join(dir, rel)));
  return [...new Set(await Promise.all(files))];
}

describe.each(['bookworm', 'trixie'] as const)('the vm preset on %s', (suite: Suite) => {
  let sysroot: { root: string; remove: () => void };
  let lean: Lean;
  let scratch: string;

  beforeAll(async () => {
    sysroot = await overlay(sampleRoot(suite));
    lean = await buildLean(sysroot.root, await makeClient(sysroot.root));
    scratch = await tempDir('check');
  }, SAMPLE_ROOT_TIMEOUT);
  afterAll(() => {
    sysroot.remove();
  });

  it(
    'builds an image whose check passes, with each NIC driver and the NFS client in it',
    async () => {
      expect(lean.log).toContain('Initramfs modules: vm preset');
      expect(lean.log).toMatch(/Initramfs checked \(unmkinitramfs\): scripts\/nfs, nfsmount/);
      const found = await checkInitramfs(lean.initrd, scratch, VM_MODULES);
      for (const m of ['virtio_net', 'e1000', '8139too', '8139cp', 'nfs', 'nfsv3', 'sunrpc']) {
        expect(found.modules.has(m) || found.builtin.has(m), m).toBe(true);
      }
      expect(found.boot).toBe('nfs');
      expect(found.paths.has('scripts/nfs')).toBe(true);
    },
    SLOW,
  );

  it(
    'leaves out the network drivers of real hardware that netboot carries, and the hardware database',
    async () => {
      const found = await checkInitramfs(lean.initrd, scratch, NFS_MODULES);
      for (const m of ['igb', 'ixgbe', 'bnx2', 'r8169', 'tg3', 'mlx5_core']) {
        expect(found.modules.has(m), m).toBe(false);
      }
      expect(found.modules.size).toBeLessThan(40);
      // Nor udev's hardware database (trixie's udev hook copies it in; 13 MiB).
      expect(found.paths.has('usr/lib/udev/hwdb.bin')).toBe(false);
    },
    SLOW,
  );
});

describe('a bookworm image with a piece taken out', () => {
  let sysroot: { root: string; remove: () => void };
  let client: string;
  let lean: Lean;
  let scratch: string;

  beforeAll(async () => {
    sysroot = await overlay(sampleRoot('bookworm'));
    client = await makeClient(sysroot.root);
    lean = await buildLean(sysroot.root, client);
    scratch = await tempDir('check');
  }, SAMPLE_ROOT_TIMEOUT);
  afterAll(() => {
    sysroot.remove();
  });

  it(
    'passes when repacked unchanged (the repacking itself loses nothing)',
    async () => {
      const same = await repacked(lean.initrd, () => Promise.resolve());
      await expect(checkInitramfs(same, scratch, VM_MODULES)).resolves.toBeDefined();
    },
    SLOW,
  );

  it(
    'fails naming the module that was removed, and only that one',
    async () => {
      const image = await repacked(lean.initrd, async (dir) => {
        const e1000 = await filesNamed(dir, /^e1000\.ko/);
        expect(e1000).toHaveLength(1);
        await rm(e1000[0] ?? '');
      });
      const error = await rejected(DisklessError, checkInitramfs(image, scratch, VM_MODULES));
      expect(error.message).toMatch(
        /^The initramfs lacks what an NFS boot needs: kernel module e1000 \(checked .+ with unmkinitramfs\)$/,
      );
    },
    SLOW,
  );

  it(
    'fails naming sunrpc and the mount helper when they are gone',
    async () => {
      const image = await repacked(lean.initrd, async (dir) => {
        for (const f of await filesNamed(dir, /^(sunrpc\.ko.*|nfsmount)$/)) await rm(f);
      });
      const error = await rejected(DisklessError, checkInitramfs(image, scratch, VM_MODULES));
      expect(error.message).toContain('the NFS mount helper (klibc-utils) nfsmount');
      expect(error.message).toContain('kernel module sunrpc');
      expect(error.message).not.toContain('e1000');
    },
    SLOW,
  );

  it(
    'fails when the config does not say BOOT=nfs',
    async () => {
      const image = await repacked(lean.initrd, async (dir) => {
        const conf = path.join(dir, 'conf/initramfs.conf');
        await writeFile(conf, (await readFile(conf, 'utf8')).replace(/^BOOT=.*$/m, 'BOOT=local'));
      });
      const error = await rejected(DisklessError, checkInitramfs(image, scratch, VM_MODULES));
      expect(error.message).toContain(
        'the config with BOOT=nfs (conf/initramfs.conf and conf.d say BOOT=local)',
      );
    },
    SLOW,
  );

  it(
    'fails a build whose module list names a module the kernel does not have, writing no ISO',
    async () => {
      const out = await tempDir('out');
      const error = await rejected(
        DisklessError,
        buildIso(
          isoOptions({
            root: client,
            sysroot: sysroot.root,
            'nfs-root': NFS_ROOT,
            output: path.join(out, 'boot.iso'),
            cache: 'off',
            'initramfs-modules': 'virtio_net\nno_such_nic',
          }),
          recordingReporter(),
          process.env,
        ),
      );
      expect(error.message).toMatch(/lacks what an NFS boot needs: kernel module no_such_nic \(/);
      expect(await readdir(out)).toEqual([]);
    },
    SLOW,
  );

  it(
    'is much smaller than the netboot image of the same sysroot',
    async () => {
      const out = await tempDir('netboot');
      const result = await buildIso(
        isoOptions({
          root: client,
          sysroot: sysroot.root,
          'nfs-root': NFS_ROOT,
          output: path.join(out, 'netboot.iso'),
          cache: 'off',
          'initramfs-modules': 'netboot',
          'initramfs-compression': 'zstd',
        }),
        recordingReporter(),
        process.env,
      );
      const netboot = result.size;
      const leanSize = (await readFile(lean.iso)).length;
      process.stderr.write(`bookworm ISO: vm preset ${leanSize} bytes, netboot ${netboot} bytes\n`);
      expect(leanSize).toBeLessThan(netboot * 0.6);
    },
    SLOW,
  );
});

describe('the initramfs-modules and initramfs-compression inputs', () => {
  it('refuses a preset mixed with module names, naming the input', () => {
    expect(() =>
      isoOptions({ root: '/r', 'nfs-root': NFS_ROOT, 'initramfs-modules': 'vm\nnfs' }),
    ).toThrow(
      /^Input "initramfs-modules": got the preset vm and 1 more line\(s\); expected one preset/,
    );
  });

  it('refuses a line that is not a module name', () => {
    let error: unknown;
    try {
      isoOptions({ root: '/r', 'nfs-root': NFS_ROOT, 'initramfs-modules': 'virtio_net\nnfs v3' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(
      /^Input "initramfs-modules": got "virtio_net\\nnfs v3"; expected .*\(line "nfs v3" is not\)$/,
    );
  });

  it('refuses an unknown compressor', () => {
    expect(() =>
      isoOptions({ root: '/r', 'nfs-root': NFS_ROOT, 'initramfs-compression': 'brotli' }),
    ).toThrow(
      /^Input "initramfs-compression": got "brotli"; expected one of gzip \| zstd \| xz \| lz4$/,
    );
  });

  it(
    'refuses zstd for a sysroot without it before any slow work, leaving nothing',
    async () => {
      const view = await overlay(sampleRoot('bookworm'));
      try {
        await rm(path.join(view.root, 'usr/bin/zstd'));
        const out = await tempDir('out');
        const error = await rejected(
          InputError,
          buildIso(
            isoOptions({
              root: await makeClient(view.root),
              sysroot: view.root,
              'nfs-root': NFS_ROOT,
              output: path.join(out, 'boot.iso'),
              'initramfs-compression': 'zstd',
            }),
            recordingReporter(),
            process.env,
          ),
        );
        expect(error.message).toBe(
          `Input "initramfs-compression": got "zstd", but ${view.root} has no /usr/bin/zstd; expected a compressor installed there (install the Debian package zstd in the sysroot, or choose gzip)`,
        );
        expect(await readdir(out)).toEqual([]);
      } finally {
        view.remove();
      }
    },
    SAMPLE_ROOT_TIMEOUT,
  );
});
