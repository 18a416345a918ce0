import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { bootTest, fstabNfsMounts, readIsoBoot } from '../../src/boot/boot-test.js';
import { Processes } from '../../src/boot/processes.js';
import { run } from '../../src/process/run.js';
import { silentReporter } from '../../src/report.js';
import { rejected } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';

let dir: string;

beforeAll(async () => {
  dir = await tempDir('boot-iso');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let count = 0;

/** A fresh directory under the test's temp dir. */
async function fresh(name: string): Promise<string> {
  const d = path.join(dir, `${name}-${String(++count)}`);
  await mkdir(d, { recursive: true });
  return d;
}

/** Writes `files` (relative path -> text) into a new directory. */
async function tree(files: Record<string, string>): Promise<string> {
  const d = await fresh('tree');
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(d, file)), { recursive: true });
    await writeFile(path.join(d, file), text);
  }
  return d;
}

/** A small real ISO holding `files`. */
async function iso(files: Record<string, string>): Promise<string> {
  const src = await tree(files);
  const out = path.join(await fresh('iso'), 'diskless.iso');
  await run('xorriso', ['-as', 'mkisofs', '-o', out, src]);
  return out;
}

const NFSROOT = 'nfsroot=10.0.2.100:/srv/diskless/current,vers=3,tcp';

const ISOLINUX = `DEFAULT diskless
LABEL diskless
  KERNEL /boot/vmlinuz
  APPEND initrd=/boot/initrd.img console=ttyS0,115200 root=/dev/nfs ${NFSROOT} ip=dhcp ro panic=10
`;

const GRUB = `set timeout=1
menuentry "diskless" {
  linux /boot/vmlinuz console=ttyS0,115200 root=/dev/nfs ${NFSROOT} ip=dhcp ro
  initrd /boot/initrd.img
}
`;

const rejection = (p: Promise<unknown>): Promise<Error> => rejected(DisklessError, p);

describe('readIsoBoot', () => {
  it('finds both firmwares and the NFS root of an ISO with both menus', async () => {
    const image = await iso({ 'isolinux/isolinux.cfg': ISOLINUX, 'boot/grub/grub.cfg': GRUB });
    expect(await readIsoBoot(image, await fresh('scratch'))).toEqual({
      firmware: ['bios', 'uefi'],
      server: '10.0.2.100',
      rootPath: '/srv/diskless/current',
    });
  });

  it('finds bios only for an ISO with an isolinux menu only', async () => {
    const image = await iso({ 'isolinux/isolinux.cfg': ISOLINUX });
    expect(await readIsoBoot(image, await fresh('scratch'))).toEqual({
      firmware: ['bios'],
      server: '10.0.2.100',
      rootPath: '/srv/diskless/current',
    });
  });

  it('finds uefi only for an ISO with a GRUB menu only', async () => {
    const grub = GRUB.replace(NFSROOT, 'nfsroot=192.168.10.5:/nfsroot,vers=3');
    const image = await iso({ 'boot/grub/grub.cfg': grub });
    expect(await readIsoBoot(image, await fresh('scratch'))).toEqual({
      firmware: ['uefi'],
      server: '192.168.10.5',
      rootPath: '/nfsroot',
    });
  });

  it('does not count a menu without nfsroot=', async () => {
    const image = await iso({
      'isolinux/isolinux.cfg': ISOLINUX,
      'boot/grub/grub.cfg': 'menuentry "x" {\n  linux /boot/vmlinuz root=/dev/sda1\n}\n',
    });
    expect((await readIsoBoot(image, await fresh('scratch'))).firmware).toEqual(['bios']);
  });

  it('reads each ISO afresh when the scratch directory is reused', async () => {
    const scratch = await fresh('scratch');
    const first = await iso({ 'isolinux/isolinux.cfg': ISOLINUX, 'boot/grub/grub.cfg': GRUB });
    await readIsoBoot(first, scratch);
    const second = await iso({
      'isolinux/isolinux.cfg': ISOLINUX.replace(NFSROOT, 'nfsroot=10.9.8.7:/srv/other,vers=3'),
    });
    expect(await readIsoBoot(second, scratch)).toEqual({
      firmware: ['bios'],
      server: '10.9.8.7',
      rootPath: '/srv/other',
    });
  });

  it('refuses an ISO without either boot menu, naming the ISO', async () => {
    const image = await iso({ 'README.txt': 'not a boot ISO\n' });
    const e = await rejection(readIsoBoot(image, await fresh('scratch')));
    expect(e.message).toContain(image);
    expect(e.message).toContain('nfsroot=');
  });

  it('refuses an ISO whose menus have no nfsroot=, naming the ISO', async () => {
    const image = await iso({
      'isolinux/isolinux.cfg': 'DEFAULT x\nLABEL x\n  APPEND root=/dev/sda1\n',
    });
    const e = await rejection(readIsoBoot(image, await fresh('scratch')));
    expect(e.message).toContain(image);
  });

  it('refuses an ISO whose two menus mount different roots', async () => {
    const image = await iso({
      'isolinux/isolinux.cfg': ISOLINUX,
      'boot/grub/grub.cfg': GRUB.replace(NFSROOT, 'nfsroot=10.0.2.100:/srv/old,vers=3'),
    });
    const e = await rejection(readIsoBoot(image, await fresh('scratch')));
    expect(e.message).toContain('bios: 10.0.2.100:/srv/diskless/current');
    expect(e.message).toContain('uefi: 10.0.2.100:/srv/old');
  });

  it('says xorriso is missing rather than that the ISO has no menu', async () => {
    const image = await iso({ 'isolinux/isolinux.cfg': ISOLINUX });
    const saved = process.env.PATH;
    process.env.PATH = await fresh('empty-path');
    try {
      const e = await rejection(readIsoBoot(image, await fresh('scratch')));
      expect(e.message).toBe('xorriso: command not found; install the Debian package xorriso');
    } finally {
      process.env.PATH = saved;
    }
  });

  it('refuses a missing ISO, naming it', async () => {
    const image = path.join(dir, 'no-such.iso');
    const e = await rejection(readIsoBoot(image, await fresh('scratch')));
    expect(e.message).toContain(image);
  });
});

describe('fstabNfsMounts', () => {
  it('lists the NFS mounts of etc/fstab, skipping comments and other file systems', async () => {
    const root = await tree({
      'etc/fstab': [
        '# /etc/fstab: static file system information.',
        '# <file system> <mount point> <type> <options> <dump> <pass>',
        '10.0.2.100:/srv/diskless/current / nfs ro,vers=3,tcp 0 0',
        '',
        '10.0.2.100:/usr\t/usr\tnfs\tro,vers=3,tcp,nolock 0 0',
        'tmpfs /tmp tmpfs mode=1777,size=512M 0 0',
        'tmpfs /var tmpfs mode=0755 0 0',
        '# 10.0.2.100:/old /old nfs ro 0 0',
        '#10.0.2.100:/srv/disabled /srv/disabled nfs ro 0 0',
        '   10.0.2.100:/home   /home   nfs4   rw,hard   0 0   # user homes',
        'proc /proc proc defaults 0 0',
        'UUID=0f2c4d8e-1b3a-4c5d-9e8f-a1b2c3d4e5f6 /boot ext4 defaults 0 2',
        '',
      ].join('\n'),
    });
    expect(await fstabNfsMounts(root)).toEqual([
      { server: '10.0.2.100', path: '/srv/diskless/current', mountPoint: '/' },
      { server: '10.0.2.100', path: '/usr', mountPoint: '/usr' },
      { server: '10.0.2.100', path: '/home', mountPoint: '/home' },
    ]);
  });

  it('reads a CRLF fstab', async () => {
    const root = await tree({ 'etc/fstab': 'master:/usr /usr nfs ro 0 0\r\n' });
    expect(await fstabNfsMounts(root)).toEqual([
      { server: 'master', path: '/usr', mountPoint: '/usr' },
    ]);
  });

  it('gives no mounts for a root without etc/fstab', async () => {
    expect(await fstabNfsMounts(await fresh('empty-root'))).toEqual([]);
  });

  it('gives no mounts for an fstab without NFS lines', async () => {
    const root = await tree({ 'etc/fstab': 'tmpfs /tmp tmpfs defaults 0 0\n# nothing else\n' });
    expect(await fstabNfsMounts(root)).toEqual([]);
  });
});

describe('bootTest', () => {
  it('refuses an exports entry the release does not mount, before starting anything', async () => {
    const image = await iso({ 'isolinux/isolinux.cfg': ISOLINUX });
    const root = await tree({
      'etc/fstab': '10.0.2.100:/usr /usr nfs ro,nolock,vers=3 0 0\n',
    });
    const procs = new Processes();
    const e = await rejection(
      bootTest(
        procs,
        {
          iso: image,
          root,
          exports: [{ pseudo: '/hom', dir: root }],
          firmware: ['bios'],
          until: 'login',
          timeoutSeconds: 30,
          work: await fresh('work'),
        },
        silentReporter,
      ),
    );
    expect(e.message).toMatch(
      /^exports \/hom: not an NFS mount of .*etc\/fstab \(it mounts \/usr\)/,
    );
    expect(procs.running()).toEqual([]);
  });
});
