// Issue 14's smaller defects: values that a boot loader, systemctl or fstab would read
// differently from what the user meant are refused with one line naming the input, or
// escaped where they can be.
import { describe, expect, it } from 'vitest';
import { DisklessError, InputError } from '../../src/errors.js';
import { readInputs } from '../../src/inputs/read.js';
import { buildIsoInputs } from '../../src/iso/options.js';
import { checkFstab, fstabMounts, generateFstab } from '../../src/rootfs/fstab.js';
import { buildRootfsInputs } from '../../src/rootfs/options.js';
import { thrown } from '../helpers/errors.js';

const iso = (values: Record<string, string>) =>
  readInputs(
    buildIsoInputs,
    (name) => ({ root: '/r', 'nfs-root': '10.0.0.1:/srv/c', ...values })[name],
  );
const rootfs = (values: Record<string, string>) =>
  readInputs(buildRootfsInputs, (name) => ({ target: '/srv/c', ...values })[name]);

describe('GRUB metacharacters in the command line and the NFS root', () => {
  it('are refused, naming the input and the value', () => {
    for (const cmdline of ['quiet $root', 'a;reboot', 'x="y z"', 'init=/bin/sh#', 'a\\b', 'f{1}']) {
      const error = thrown(InputError, () => iso({ cmdline }));
      expect(error.input).toBe('cmdline');
      expect(error.message).toContain(JSON.stringify(cmdline));
      expect(error.message).toMatch(/GRUB/);
    }
    for (const nfsRoot of ['10.0.0.1:/srv/$x', '10.0.0.1:/srv;x', "10.0.0.1:/srv/'a'"]) {
      expect(thrown(InputError, () => iso({ 'nfs-root': nfsRoot })).input).toBe('nfs-root');
    }
  });

  it('plain kernel arguments still pass', () => {
    expect(iso({ cmdline: 'panic=10 net.ifnames=0 quiet' }).cmdline).toBe(
      'panic=10 net.ifnames=0 quiet',
    );
  });
});

describe('unit names', () => {
  it('starting with - are refused (systemctl would read an option)', () => {
    for (const input of ['mask-services', 'enable-services']) {
      const error = thrown(InputError, () => rootfs({ [input]: 'ssh.service\n--root=/' }));
      expect(error.input).toBe(input);
      expect(error.message).toContain('--root=/');
    }
    expect(rootfs({ 'mask-services': 'getty@tty1.service' }).maskServices).toEqual([
      'getty@tty1.service',
    ]);
  });
});

describe('paths with spaces in fstab', () => {
  it('are escaped in the generated fstab and read back as one field', () => {
    const text = generateFstab({
      copyUsr: false,
      shareHome: true,
      nfsServer: '10.0.0.1',
      usrExport: '/srv/my master/usr',
      homeExport: '/srv/my master/home',
    });
    expect(text).toContain('10.0.0.1:/srv/my\\040master/usr /usr nfs ');
    expect(fstabMounts(text).map((m) => m.file)).toEqual(['/var', '/tmp', '/home', '/usr']);
  });

  it('unescaped in a template fstab are refused, naming the line', () => {
    const error = thrown(DisklessError, () => {
      checkFstab(
        'tmpfs /var tmpfs mode=0755 0 0\ntmpfs /tmp tmpfs defaults 0 0\n10.0.0.1:/srv/my master/usr /usr nfs ro 0 0\n',
        {
          copyUsr: false,
          shareHome: false,
          from: 'template/etc/fstab',
        },
      );
    });
    expect(error.message).toMatch(
      /template\/etc\/fstab: the line ".*my master.*" has more than 6 fields/,
    );
  });
});
