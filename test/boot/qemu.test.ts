import { describe, expect, it } from 'vitest';
import { DisklessError } from '../../src/errors.js';
import { OVMF_CODE, qemuArgs, slirpNetwork, type QemuOptions } from '../../src/boot/qemu.js';
import { thrown } from '../helpers/errors.js';

function fields(net: string): Record<string, string> {
  return Object.fromEntries(
    net.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
}

const errorOf = (run: () => unknown): Error => thrown(DisklessError, run);

/** The value after each occurrence of `flag`. */
function valuesOf(args: readonly string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));
}

describe('slirpNetwork', () => {
  it("keeps slirp's usual addresses around 10.0.2.100", () => {
    expect(slirpNetwork('10.0.2.100')).toBe(
      'net=10.0.2.0/24,host=10.0.2.2,dns=10.0.2.3,dhcpstart=10.0.2.15',
    );
  });

  it("uses the server's /24", () => {
    expect(fields(slirpNetwork('192.168.7.50'))).toEqual({
      net: '192.168.7.0/24',
      host: '192.168.7.2',
      dns: '192.168.7.3',
      dhcpstart: '192.168.7.15',
    });
  });

  it("moves slirp's host address away from a server at .2", () => {
    const f = fields(slirpNetwork('10.1.2.2'));
    expect(f.host).toBe('10.1.2.254');
    expect(f.dns).toBe('10.1.2.3');
    expect(f.dhcpstart).toBe('10.1.2.15');
  });

  it("moves slirp's DNS address away from a server at .3", () => {
    const f = fields(slirpNetwork('10.1.2.3'));
    expect(f.host).toBe('10.1.2.2');
    expect(f.dns).toBe('10.1.2.253');
    expect(f.dhcpstart).toBe('10.1.2.15');
  });

  it.each([15, 16, 30, 31, 39])('moves the DHCP range away from a server at .%i', (d) => {
    const f = fields(slirpNetwork(`10.0.2.${d}`));
    expect(f.dhcpstart).toBe('10.0.2.200');
    expect(f.host).toBe('10.0.2.2');
    expect(f.dns).toBe('10.0.2.3');
  });

  it.each([14, 40, 1, 254])('keeps the DHCP range for a server at .%i', (d) => {
    expect(fields(slirpNetwork(`10.0.2.${d}`)).dhcpstart).toBe('10.0.2.15');
  });

  it.each([
    'nfs.example.org',
    'localhost',
    '127.0.0.1',
    '127.1.2.3',
    '10.0.2.0',
    '10.0.2.255',
    '10.0.256.100',
    '300.0.2.100',
    '10.0.2',
    '10.0.2.100:2049',
    '',
    // QEMU would read a leading zero as octal; 0.x, multicast and reserved are no hosts.
    '010.0.2.100',
    '10.0.02.100',
    '0.1.2.3',
    '224.0.0.5',
    '240.1.2.3',
  ])('refuses %j, naming it', (server) => {
    const e = errorOf(() => slirpNetwork(server));
    expect(e.message).toContain(`NFS server ${JSON.stringify(server)}`);
    expect(e.message).toContain('IPv4 address');
  });
});

describe('qemuArgs', () => {
  const base: QemuOptions = {
    iso: '/tmp/work/diskless.iso',
    firmware: 'bios',
    serialLog: '/tmp/work/serial-bios.log',
    server: '10.0.2.100',
  };

  it('uses TCG, no display, no reboot, the serial console to the file and the ISO as CD', () => {
    const args = qemuArgs(base);
    expect(valuesOf(args, '-accel')).toEqual(['tcg']);
    expect(args).not.toContain('-enable-kvm');
    expect(valuesOf(args, '-display')).toEqual(['none']);
    expect(args).toContain('-no-reboot');
    expect(valuesOf(args, '-serial')).toEqual(['file:/tmp/work/serial-bios.log']);
    expect(valuesOf(args, '-cdrom')).toEqual(['/tmp/work/diskless.iso']);
    expect(valuesOf(args, '-boot')).toEqual(['d']);
    expect(valuesOf(args, '-m')).toEqual(['1024']);
  });

  it('gives the guest the memory asked for', () => {
    expect(valuesOf(qemuArgs({ ...base, memoryMiB: 2048 }), '-m')).toEqual(['2048']);
  });

  it('disables the NIC option ROM so the firmware does not boot from the network', () => {
    const [device] = valuesOf(qemuArgs(base), '-device');
    expect(device).toContain('netdev=n0');
    expect(device).toMatch(/(^|,)romfile=($|,)/);
  });

  it('builds a restricted user network with one socat forward per NFS port', () => {
    const [netdev = ''] = valuesOf(qemuArgs(base), '-netdev');
    const parts = netdev.split(',');
    expect(parts[0]).toBe('user');
    expect(parts).toContain('id=n0');
    expect(parts).toContain('restrict=on');
    expect(parts).toContain('net=10.0.2.0/24');
    const forwards = parts.filter((p) => p.startsWith('guestfwd='));
    expect(forwards).toEqual([
      'guestfwd=tcp:10.0.2.100:111-cmd:socat - TCP:127.0.0.1:111',
      'guestfwd=tcp:10.0.2.100:2049-cmd:socat - TCP:127.0.0.1:2049',
      'guestfwd=tcp:10.0.2.100:20048-cmd:socat - TCP:127.0.0.1:20048',
    ]);
    expect(parts.filter((p) => p.startsWith('hostfwd='))).toEqual([]);
  });

  it("forwards the ISO's server address, with the network moved out of its way", () => {
    const [netdev = ''] = valuesOf(qemuArgs({ ...base, server: '172.16.5.2' }), '-netdev');
    expect(netdev).toContain('guestfwd=tcp:172.16.5.2:2049-cmd:socat - TCP:127.0.0.1:2049');
    expect(netdev).toContain('host=172.16.5.254');
  });

  it('has no pflash drives for bios', () => {
    const args = qemuArgs({ ...base, ovmfVars: '/tmp/work/OVMF_VARS.fd' });
    expect(args.join(' ')).not.toContain('pflash');
    expect(args).not.toContain('-drive');
  });

  it('has OVMF code (read-only) and a vars copy as pflash drives for uefi', () => {
    const args = qemuArgs({ ...base, firmware: 'uefi', ovmfVars: '/tmp/work/OVMF_VARS.fd' });
    expect(valuesOf(args, '-drive')).toEqual([
      `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      'if=pflash,format=raw,unit=1,file=/tmp/work/OVMF_VARS.fd',
    ]);
    const custom = qemuArgs({
      ...base,
      firmware: 'uefi',
      ovmfVars: '/v.fd',
      ovmfCode: '/c.fd',
    });
    expect(valuesOf(custom, '-drive')[0]).toContain('file=/c.fd');
  });

  it('refuses uefi without a writable copy of the OVMF vars', () => {
    expect(errorOf(() => qemuArgs({ ...base, firmware: 'uefi' })).message).toContain(
      'OVMF_VARS.fd',
    );
  });

  it('refuses a server that is not an IPv4 address', () => {
    expect(errorOf(() => qemuArgs({ ...base, server: 'master.lan' })).message).toContain(
      '"master.lan"',
    );
  });
});
