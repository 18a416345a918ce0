// Issue 14: build-iso on a sysroot with the real dropbear-initramfs package installed (its
// postinst makes the master's dropbear host keys): the ISO carries no key of the master,
// checked by listing and scanning the built image; and a key that does reach the image
// fails the build naming its path inside the image.
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { buildIso } from '../../src/iso/build.js';
import { scanImage } from '../../src/iso/image-scan.js';
import { scanSecrets } from '../../src/secrets/scan-tree.js';
import {
  isoOptions,
  makeClient,
  overlay,
  SAMPLE_ROOT_TIMEOUT,
  sampleRoot,
  tempDir,
  xorriso,
} from './fixture.js';
import { recordingReporter } from '../../src/report.js';

const DEBS = ['dropbear-initramfs', 'dropbear-bin', 'libtomcrypt1', 'libtommath1'];
const DEB_CACHE = '/var/cache/diskless/debs';

/** The packages' .deb files, downloaded once with apt-get (an apt-get update if needed). */
async function debs(): Promise<string[]> {
  await mkdir(DEB_CACHE, { recursive: true });
  const have = () => readdir(DEB_CACHE).then((n) => n.filter((f) => f.endsWith('.deb')));
  if ((await have()).length < DEBS.length) {
    const download = () =>
      execFileSync('apt-get', ['download', ...DEBS], { cwd: DEB_CACHE, stdio: 'pipe' });
    try {
      download();
    } catch {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'pipe' });
      download();
    }
  }
  return (await have()).map((n) => path.join(DEB_CACHE, n));
}

describe('build-iso on a master with dropbear-initramfs', () => {
  let sysroot: { root: string; remove: () => void };

  beforeAll(async () => {
    sysroot = await overlay(sampleRoot());
    const root = sysroot.root;
    // No initramfs for the sysroot itself while installing: only build-iso makes one.
    await writeFile(
      path.join(root, 'etc/initramfs-tools/update-initramfs.conf'),
      'update_initramfs=no\n',
    );
    const inside = path.join(root, 'tmp/debs');
    await mkdir(inside, { recursive: true });
    for (const deb of await debs()) execFileSync('cp', [deb, inside]);
    execFileSync('chroot', [root, 'sh', '-c', 'dpkg -i /tmp/debs/*.deb'], {
      stdio: 'pipe',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' },
    });
  }, SAMPLE_ROOT_TIMEOUT);
  afterAll(() => {
    sysroot.remove();
  });

  it('puts none of the master dropbear host keys into the ISO', async () => {
    const keyDir = path.join(sysroot.root, 'etc/dropbear/initramfs');
    const masterKeys = (await readdir(keyDir)).filter((n) => n.endsWith('_host_key'));
    expect(masterKeys.length).toBeGreaterThan(0); // the package's postinst made them
    const client = await makeClient(sysroot.root);
    const out = await tempDir('out');
    const output = path.join(out, 'boot.iso');
    await buildIso(
      isoOptions({
        root: client,
        sysroot: sysroot.root,
        'nfs-root': '10.0.0.1:/srv/c',
        output,
        cache: 'off',
      }),
      recordingReporter(),
      process.env,
    );
    // The listing beside the ISO names no dropbear file.
    const listing = await readFile(`${output}.contents`, 'utf8');
    expect(listing).toMatch(/ \/boot\/initrd\.img:\S*\/init$/m);
    expect(listing).not.toMatch(/dropbear/);
    // The image itself, read back: no dropbear key, no secret, none of the keys' bytes.
    const work = await tempDir('unpack');
    xorriso(
      output,
      '-osirrox',
      'on',
      '-extract',
      '/boot/initrd.img',
      path.join(work, 'initrd.img'),
    );
    execFileSync('unmkinitramfs', [path.join(work, 'initrd.img'), path.join(work, 'x')]);
    const scan = await scanSecrets({ root: path.join(work, 'x'), allow: [] });
    expect(scan.hits).toEqual([]);
    expect(scan.files).toBeGreaterThan(100);
    const all = execFileSync('find', [path.join(work, 'x'), '-type', 'f'], { encoding: 'utf8' });
    expect(all).not.toMatch(/dropbear/);
    const unpacked = path.join(work, 'x');
    const contents: Buffer[] = [];
    for (const rel of await readdir(unpacked, { recursive: true })) {
      const file = path.join(unpacked, rel);
      if ((await lstat(file)).isFile()) contents.push(await readFile(file));
    }
    expect(contents.length).toBeGreaterThanOrEqual(scan.files); // hard links counted once by the scan
    for (const name of masterKeys) {
      const key = await readFile(path.join(keyDir, name));
      const tail = key.subarray(key.length - 32); // private key bytes
      expect(
        contents.some((c) => c.includes(tail)),
        name,
      ).toBe(false);
    }
  }, 300_000);
});

describe('the image scan', () => {
  it('fails naming the path inside the image when a key reached the initramfs', async () => {
    const stage = await tempDir('stage');
    const tree = await tempDir('initramfs');
    await mkdir(path.join(tree, 'etc/dropbear'), { recursive: true });
    execFileSync(
      'dropbearkey',
      ['-t', 'ed25519', '-f', path.join(tree, 'etc/dropbear/dropbear_ed25519_host_key')],
      { stdio: 'pipe' },
    );
    await writeFile(path.join(tree, 'init'), '#!/bin/sh\n');
    await mkdir(path.join(stage, 'boot'), { recursive: true });
    execFileSync('sh', [
      '-c',
      'cd "$1" && find . | cpio -o -H newc --quiet | gzip > "$2"',
      'sh',
      tree,
      path.join(stage, 'boot/initrd.img'),
    ]);
    const error = await scanImage({ stage, scratch: await tempDir('scratch') }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DisklessError);
    expect((error as Error).message).toContain(
      '/boot/initrd.img:/etc/dropbear/dropbear_ed25519_host_key (',
    );
  });
});
