/**
 * The QEMU command line of a boot test: the ISO as a CD, BIOS (SeaBIOS) or UEFI (OVMF)
 * firmware, TCG (no KVM needed), the serial console to a file, and an isolated user-mode
 * network (restrict=on) in which the NFS server's address forwards only the NFS ports to
 * this machine's loopback, one socat per connection (e2e-boot.md).
 */
import { DisklessError } from '../errors.js';
import { NFS_CLIENT_PORTS } from './nfs.js';

export type Firmware = 'bios' | 'uefi';
export const FIRMWARES: readonly Firmware[] = ['bios', 'uefi'];
/** The firmware's name in logs and summaries. */
export const FIRMWARE_NAMES: Record<Firmware, string> = {
  bios: 'BIOS (SeaBIOS)',
  uefi: 'UEFI (OVMF)',
};

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS.fd';

export interface QemuOptions {
  iso: string;
  firmware: Firmware;
  /** File the guest's serial console is written to. */
  serialLog: string;
  /** The NFS server's IPv4 address as the guest sees it (the ISO's nfsroot= host). */
  server: string;
  /** A writable copy of OVMF_VARS.fd, for uefi. */
  ovmfVars?: string;
  ovmfCode?: string;
  memoryMiB?: number;
}

/**
 * slirp's network around `server`: its /24, with slirp's own host, DNS and DHCP addresses
 * moved out of the server's way (a guestfwd cannot use slirp's host or DNS address).
 * `guest`, an address in that /24, is the one the guest's DHCP gets (its first lease).
 */
export function slirpNetwork(server: string, guest?: string): string {
  // Plain decimal octets only: QEMU would read 010 as octal.
  const octet = '(0|[1-9]\\d{0,2})';
  const m = new RegExp(`^${octet}\\.${octet}\\.${octet}\\.${octet}$`).exec(server);
  const octets = m ? m.slice(1).map(Number) : [];
  const [a = -1, b = -1, c = -1, d = -1] = octets;
  // A unicast host address: not 0.x, loopback, multicast or reserved, not .0 or .255.
  if (
    !m ||
    octets.some((o) => o > 255) ||
    a === 0 ||
    a === 127 ||
    a >= 224 ||
    d === 0 ||
    d === 255
  ) {
    throw new DisklessError(
      `NFS server ${JSON.stringify(server)}: expected the IPv4 address of the ISO's nfsroot= (not a name, not loopback)`,
    );
  }
  const net = `${a}.${b}.${c}`;
  const host = d === 2 ? 254 : 2;
  const dns = d === 3 ? 253 : 3;
  const dhcp = d >= 15 && d < 40 ? 200 : 15;
  let start = `${net}.${dhcp}`;
  if (guest !== undefined) {
    const last = Number(guest.slice(net.length + 1));
    const inside = Number.isInteger(last) && last >= 4 && last <= 252 && last !== d;
    if (!guest.startsWith(`${net}.`) || !inside) {
      throw new DisklessError(
        `guest address ${JSON.stringify(guest)}: expected an address in ${net}.4 to ${net}.252 other than the NFS server's`,
      );
    }
    start = guest;
  }
  return `net=${net}.0/24,host=${net}.${host},dns=${net}.${dns},dhcpstart=${start}`;
}

/**
 * The user-mode NIC of a boot: isolated (restrict=on), the NFS server's address forwarding
 * only the NFS ports to this machine's loopback, one socat per connection.
 */
export function nfsNetdev(server: string, guest?: string): string {
  const forwards = NFS_CLIENT_PORTS.map(
    (port) => `guestfwd=tcp:${server}:${port}-cmd:socat - TCP:127.0.0.1:${port}`,
  );
  return ['user', 'id=n0', 'restrict=on', slirpNetwork(server, guest), ...forwards].join(',');
}

/** The firmware's flash drives: none for SeaBIOS (QEMU's default), OVMF's code and vars for UEFI. */
export function firmwareArgs(o: Pick<QemuOptions, 'firmware' | 'ovmfVars' | 'ovmfCode'>): string[] {
  if (o.firmware !== 'uefi') return [];
  if (!o.ovmfVars) throw new DisklessError('a UEFI boot needs a writable copy of OVMF_VARS.fd');
  return [
    '-drive',
    `if=pflash,format=raw,unit=0,readonly=on,file=${o.ovmfCode ?? OVMF_CODE}`,
    '-drive',
    `if=pflash,format=raw,unit=1,file=${o.ovmfVars}`,
  ];
}

/** The arguments of qemu-system-x86_64 for one boot. */
export function qemuArgs(o: QemuOptions): string[] {
  return [
    '-accel',
    'tcg',
    '-m',
    String(o.memoryMiB ?? 1024),
    '-display',
    'none',
    '-monitor',
    'none',
    '-no-reboot',
    '-serial',
    `file:${o.serialLog}`,
    ...firmwareArgs(o),
    '-cdrom',
    o.iso,
    '-boot',
    'd',
    // No option ROM: the firmware must not try a network boot.
    '-device',
    'virtio-net-pci,netdev=n0,romfile=',
    '-netdev',
    nfsNetdev(o.server),
  ];
}
