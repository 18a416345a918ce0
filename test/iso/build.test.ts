// build-iso against a real kernel package: real mkinitramfs (in a debootstrapped sysroot,
// and on this machine's own root), grub-mkimage, mtools, isolinux and xorriso. The tests
// of the first describe share one sysroot and one cache and run in order.
import { execFileSync } from 'node:child_process';
import { appendFile, open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIso, reportBuildIso } from '../../src/iso/build.js';
import {
  CLIENT_MARK,
  hookRuns,
  isoFile,
  isoOptions,
  makeClient,
  mountsUnder,
  overlay,
  SAMPLE_ROOT_TIMEOUT,
  sampleRoot,
  tempDir,
  xorriso,
} from './fixture.js';
import type { BuildIsoOptions, BuildIsoReport } from '../../src/iso/options.js';
import { recordingReporter, type Reporter } from '../../src/report.js';

const NFS_ROOT = '10.0.2.100:/srv/diskless/current';
const EXPECTED_CMDLINE = `console=tty0 console=ttyS0,115200n8 root=/dev/nfs nfsroot=${NFS_ROOT},vers=3,tcp ip=dhcp ro panic=10`;

/** One build's report: its outputs and summary, as the action publishes them. */
async function build(options: BuildIsoOptions, reporter: Reporter): Promise<BuildIsoReport> {
  return reportBuildIso(await buildIso(options, reporter, process.env));
}

function sha256sum(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0] ?? '';
}

// A busy machine (the tests share it) needs more than the default minute per build.
describe('build-iso on a debootstrapped sysroot', { timeout: 180_000 }, () => {
  let sysroot: { root: string; remove: () => void };
  let client: string;
  let cacheDir: string;
  let outDir: string;
  let first: { sha256: string; key: string };
  const inputs = () => ({
    root: client,
    sysroot: sysroot.root,
    'nfs-root': NFS_ROOT,
    cmdline: 'panic=10',
    'cache-dir': cacheDir,
  });

  beforeAll(async () => {
    sysroot = await overlay(sampleRoot());
    client = await makeClient(sysroot.root);
    cacheDir = path.join(await tempDir('cache'), 'initramfs');
    outDir = await tempDir('out');
  }, SAMPLE_ROOT_TIMEOUT);
  afterAll(() => {
    sysroot.remove();
  });

  it('cold: builds a BIOS and UEFI ISO with the client initramfs and the NFS command line', async () => {
    const output = path.join(outDir, 'boot.iso');
    const c = recordingReporter();
    const report = await build(isoOptions({ ...inputs(), output }), c);

    expect(report.outputs['initramfs-cache-hit']).toBe(false);
    expect(report.outputs.iso).toBe(output);
    expect(report.outputs['kernel-version']).toMatch(/^6\.\d+\.\d+-\d+-amd64$/);
    expect(report.outputs['cache-key']).toMatch(/^diskless-initramfs-6\.\S+-[0-9a-f]{64}$/);
    expect(report.outputs.sha256).toBe(sha256sum(output));
    expect(report.outputs.size).toBe((await stat(output)).size);
    expect(await readFile(`${output}.sha256`, 'utf8')).toBe(`${sha256sum(output)}  boot.iso\n`);
    expect(await readdir(outDir)).toEqual(['boot.iso', 'boot.iso.contents', 'boot.iso.sha256']);
    expect(await hookRuns(sysroot.root)).toBe(1);
    expect(c.groups).toEqual([
      'Kernel and tools',
      'Initramfs',
      'Boot loaders',
      'ISO image',
      'Check the ISO',
    ]);
    expect(c.lines.join('\n')).toContain(`Cache miss`);
    const summary = Object.fromEntries(report.summary);
    expect(summary['Cache key']).toBe(report.outputs['cache-key']);
    expect(summary['Time per phase']).toMatch(
      /^kernel [\d.]+ s, initramfs [\d.]+ s, loaders [\d.]+ s, iso [\d.]+ s, check [\d.]+ s$/,
    );

    // Read back independently: both El Torito records, the isohybrid MBR, the files.
    const records = xorriso(output, '-report_el_torito', 'plain', '-report_system_area', 'plain');
    expect(records).toMatch(/El Torito boot img :\s+1\s+BIOS\s+y/);
    expect(records).toMatch(/El Torito img path :\s+1\s+\/isolinux\/isolinux\.bin/);
    expect(records).toMatch(/El Torito boot img :\s+2\s+UEFI\s+y/);
    expect(records).toMatch(/El Torito img path :\s+2\s+\/boot\/grub\/efiboot\.img/);
    expect(records).toContain('MBR isohybrid');
    const files = xorriso(output, '-find', '/', '-type', 'f');
    for (const f of ['/boot/vmlinuz', '/boot/initrd.img', '/isolinux/ldlinux.c32']) {
      expect(files).toContain(`'${f}'`);
    }
    const isolinux = await isoFile(output, '/isolinux/isolinux.cfg');
    expect(isolinux).toContain(`APPEND initrd=/boot/initrd.img ${EXPECTED_CMDLINE}\n`);
    expect(isolinux).toContain('SERIAL 0 115200');
    const grub = await isoFile(output, '/boot/grub/grub.cfg');
    expect(grub).toContain(`linux /boot/vmlinuz ${EXPECTED_CMDLINE}\n`);
    expect(grub).toContain('terminal_output console serial');

    // The initramfs is the client's: its marker, BOOT=nfs, its modules list.
    const unpacked = await tempDir('initrd');
    const initrd = path.join(unpacked, 'initrd.img');
    xorriso(output, '-osirrox', 'on', '-extract', '/boot/initrd.img', initrd);
    execFileSync('unmkinitramfs', [initrd, path.join(unpacked, 'x')]);
    // With early (microcode) archives in front, the main one unpacks into main/.
    const main = (await readdir(path.join(unpacked, 'x'))).includes('main') ? 'x/main' : 'x';
    const confD = path.join(unpacked, main, 'conf/conf.d');
    expect(await readFile(path.join(confD, 'diskless-test'), 'utf8')).toBe(`${CLIENT_MARK}\n`);
    expect(await readFile(path.join(unpacked, main, 'conf/initramfs.conf'), 'utf8')).toMatch(
      /^BOOT=nfs$/m,
    );
    const modules = execFileSync(
      'find',
      [path.join(unpacked, main, 'usr/lib/modules'), '-name', '*.ko*'],
      {
        encoding: 'utf8',
      },
    );
    expect(modules).toMatch(/\/virtio_net\.ko/);
    expect(modules).toMatch(/\/nfsv3\.ko/);

    // Nothing left behind in the sysroot: no /proc mount, no work directory.
    expect(await mountsUnder(sysroot.root)).toEqual([sysroot.root]);
    expect(
      (await readdir(path.join(sysroot.root, 'tmp'))).filter((n) =>
        n.startsWith('diskless-initramfs'),
      ),
    ).toEqual([]);
    first = { sha256: report.outputs.sha256, key: report.outputs['cache-key'] };
  });

  it('again with the same inputs: a cache hit, no mkinitramfs, the same sha256', async () => {
    const output = path.join(outDir, 'again.iso');
    const c = recordingReporter();
    const report = await build(isoOptions({ ...inputs(), output }), c);
    expect(report.outputs['initramfs-cache-hit']).toBe(true);
    expect(report.outputs['cache-key']).toBe(first.key);
    expect(await hookRuns(sysroot.root)).toBe(1);
    expect(report.outputs.sha256).toBe(first.sha256);
    expect(sha256sum(output)).toBe(first.sha256);
    expect(c.lines.join('\n')).toContain('Cache hit');
    expect(Object.fromEntries(report.summary).Initramfs).toMatch(/^cache hit/);
  });

  it("SOURCE_DATE_EPOCH in the step's env dates the ISO (process.env untouched)", async () => {
    const output = path.join(outDir, 'dated.iso');
    const c = recordingReporter();
    const result = await buildIso(isoOptions({ ...inputs(), output }), c, {
      ...process.env,
      SOURCE_DATE_EPOCH: '1700000000',
    });
    expect(result.initramfs.cacheHit).toBe(true);
    expect(c.lines.join('\n')).toContain('dated 2023-11-14T22:13:20.000Z (from SOURCE_DATE_EPOCH)');
    expect(xorriso(output, '-pvd_info')).toMatch(/Creation Time: 20231114221320/);
    expect(result.sha256).not.toBe(first.sha256);
  });

  it('a corrupt cache entry is detected, rebuilt, and the ISO is the same', async () => {
    const img = path.join(cacheDir, `${first.key}.img`);
    const fh = await open(img, 'r+');
    await fh.write(Buffer.from('CORRUPT'), 0, 7, 4096);
    await fh.close();
    const output = path.join(outDir, 'rebuilt.iso');
    const c = recordingReporter();
    const report = await build(isoOptions({ ...inputs(), output }), c);
    expect(report.outputs['initramfs-cache-hit']).toBe(false);
    expect(c.warnings.join('\n')).toMatch(/cached initramfs .* is corrupt \(.*SHA-256/);
    expect(await hookRuns(sysroot.root)).toBe(2);
    // mkinitramfs is reproducible too: a rebuilt initramfs gives the same ISO.
    expect(report.outputs.sha256).toBe(first.sha256);
    const again = await build(isoOptions({ ...inputs(), output }), recordingReporter());
    expect(again.outputs['initramfs-cache-hit']).toBe(true);
  });

  it("changing one file of the client's initramfs config is a miss", async () => {
    await appendFile(path.join(client, 'etc/initramfs-tools/modules'), 'virtio_blk\n');
    const output = path.join(outDir, 'config-changed.iso');
    const report = await build(isoOptions({ ...inputs(), output }), recordingReporter());
    expect(report.outputs['initramfs-cache-hit']).toBe(false);
    expect(report.outputs['cache-key']).not.toBe(first.key);
    expect(report.outputs.sha256).not.toBe(first.sha256);
    expect(await hookRuns(sysroot.root)).toBe(3);
  });

  it('changing the kernel is a miss', async () => {
    const output = path.join(outDir, 'kernel-changed.iso');
    const before = await build(isoOptions({ ...inputs(), output }), recordingReporter());
    expect(before.outputs['initramfs-cache-hit']).toBe(true);
    // Another build of the same kernel version: the image's digest differs.
    const image = path.join(sysroot.root, 'boot', `vmlinuz-${before.outputs['kernel-version']}`);
    await appendFile(image, Buffer.alloc(512, 0));
    const report = await build(isoOptions({ ...inputs(), output }), recordingReporter());
    expect(report.outputs['initramfs-cache-hit']).toBe(false);
    expect(report.outputs['cache-key']).not.toBe(before.outputs['cache-key']);
    expect(await hookRuns(sysroot.root)).toBe(4);
  });
});

describe("build-iso with this machine's own root as sysroot", () => {
  it('runs mkinitramfs without a chroot and boots the newest installed kernel', async () => {
    const newest = execFileSync('sh', ['-c', 'ls /boot/vmlinuz-* | sort -V | tail -n 1'], {
      encoding: 'utf8',
    }).trim();
    expect(newest, 'this machine needs a kernel: apt-get install linux-image-amd64').not.toBe('');
    const client = await makeClient('/');
    const output = path.join(await tempDir('out'), 'master.iso');
    const report = await build(
      isoOptions({ root: client, 'nfs-root': NFS_ROOT, output, cache: 'off', 'boot-mode': 'bios' }),
      recordingReporter(),
    );
    const linked = execFileSync('readlink', ['-f', '/vmlinuz'], { encoding: 'utf8' }).trim();
    const expected = path
      .basename(linked.startsWith('/boot/') ? linked : newest)
      .slice('vmlinuz-'.length);
    expect(report.outputs['kernel-version']).toBe(expected);
    expect(report.outputs['initramfs-cache-hit']).toBe(false);
    const records = xorriso(output, '-report_el_torito', 'plain');
    expect(records).toMatch(/El Torito boot img :\s+1\s+BIOS/);
    expect(records).not.toMatch(/UEFI/);
  });
});
