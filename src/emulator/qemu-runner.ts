/**
 * The server runner that boots for real: each started server is a QEMU machine (TCG)
 * booting its drives' files, CDs read-only, so a client can be watched from the inside.
 * The NFS server the boot test builds (nfs-ganesha and rpcbind) runs in a private
 * namespace; each machine's NIC is a tap on that namespace's bridge (cloud-network.ts),
 * where dnsmasq leases it the address the emulator shows as nic:0:dhcp:ip, and this
 * machine reaches that address (a health check, ssh). Each serial console is appended to
 * <work>/consoles/<server uuid>.log across boots. `shutdown` is the ACPI power button
 * (QEMU's monitor); every process started is stopped by `close`, the network goes with it.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { createConnection } from 'node:net';
import path from 'node:path';
import { privateNamespace, type Namespace } from '../boot/namespace.js';
import { startNfsServer, type NfsExport } from '../boot/nfs.js';
import { Processes } from '../boot/processes.js';
import { firmwareArgs, OVMF_VARS, type Firmware } from '../boot/qemu.js';
import { DisklessError } from '../errors.js';
import { silentReporter, type Reporter } from '../report.js';
import { startCloudNetwork, type CloudNetwork } from './cloud-network.js';
import type { BootSpec, RunningServer, ServerRunner } from './server-runner.js';

export interface QemuRunnerOptions {
  /** Directory for the consoles, the NFS server's files and UEFI variables. */
  work: string;
  /** The NFS server's IPv4 address as the CDs' nfsroot= names it, e.g. 10.0.2.100. */
  nfsServer: string;
  /** What the NFS server serves: the path clients mount -> the local directory. */
  exports: readonly NfsExport[];
  /** Firmware of every machine (default bios). */
  firmware?: Firmware;
  reporter?: Reporter;
}

/** A started QEMU runner; `consoleOf` names a server's serial console file. */
export interface QemuRunner extends ServerRunner {
  readonly network: string;
  consoleOf(server: string): string;
  /** The servers' network: its bridge, this machine's end of it, dnsmasq's files. */
  readonly net: Omit<CloudNetwork, 'attach' | 'detach' | 'close'>;
}

const NIC_DEVICES: Record<string, string> = {
  e1000: 'e1000',
  rtl8139: 'rtl8139',
  virtio: 'virtio-net-pci',
};

/** A MAC address of its own per server (QEMU's prefix, then the UUID's first bytes). */
export function macOf(server: string): string {
  const hex = server.replace(/-/g, '').slice(0, 6).padEnd(6, '0');
  return `52:54:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}`;
}

/** QEMU's -drive for an attached drive: IDE bus and unit, or virtio block. */
function driveArg(d: BootSpec['drives'][number]): string {
  const media = d.media === 'cdrom' ? 'media=cdrom,readonly=on' : 'media=disk';
  const ide = /^ide:([01]):([01])$/.exec(d.device);
  if (ide) return `file=${d.file},format=raw,${media},if=ide,bus=${ide[1]},unit=${ide[2]}`;
  const block = /^block:([0-7])$/.exec(d.device);
  if (block) return `file=${d.file},format=raw,${media},if=virtio,index=${block[1]}`;
  throw new DisklessError(
    `device ${d.device}: the QEMU runner attaches ide:B:U and block:N drives only`,
  );
}

/** The QEMU command line of one server. */
export function machineArgs(
  spec: BootSpec,
  o: { console: string; monitor: string; tap: string; firmware: Firmware; ovmfVars?: string },
): string[] {
  const first = spec.drives.find((d) => d.device === spec.boot[0]);
  return [
    '-accel',
    'tcg',
    '-m',
    String(spec.mem),
    '-smp',
    String(spec.smp),
    '-display',
    'none',
    '-monitor',
    `unix:${o.monitor},server=on,wait=off`,
    '-chardev',
    `file,id=console,path=${o.console},append=on`,
    '-serial',
    'chardev:console',
    ...firmwareArgs({ firmware: o.firmware, ovmfVars: o.ovmfVars }),
    ...spec.drives.flatMap((d) => ['-drive', driveArg(d)]),
    '-boot',
    `order=${first?.media === 'cdrom' ? 'd' : 'c'}`,
    // No option ROM: the firmware must not try a network boot.
    '-device',
    `${NIC_DEVICES[spec.nicModel] ?? 'e1000'},netdev=n0,mac=${macOf(spec.server)},romfile=`,
    '-netdev',
    `tap,id=n0,ifname=${o.tap},script=no,downscript=no`,
  ];
}

/**
 * Presses the ACPI power button through the machine's monitor socket; resolves once QEMU
 * closed the connection. Its greeting is read and dropped: an unread socket never sees
 * the end of the connection.
 */
export function pressPowerButton(monitor: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(monitor, () => {
      socket.end('system_powerdown\n');
    });
    socket.resume();
    socket.on('error', (error) => {
      reject(new DisklessError(`QEMU monitor ${monitor}: ${error.message}`));
    });
    socket.on('close', () => {
      resolve();
    });
  });
}

/** Starts the NFS server and the servers' network in a private namespace; machines start as servers start. */
export async function startQemuRunner(o: QemuRunnerOptions): Promise<QemuRunner> {
  const reporter = o.reporter ?? silentReporter;
  const firmware = o.firmware ?? 'bios';
  const procs = new Processes();
  const consoles = path.join(o.work, 'consoles');
  const machines = path.join(o.work, 'machines');
  await mkdir(consoles, { recursive: true });
  await mkdir(machines, { recursive: true });
  let ns: Namespace | undefined;
  let net: CloudNetwork | undefined;
  try {
    ns = await privateNamespace(procs, o.work);
    net = await startCloudNetwork(procs, ns, { dir: o.work, nfsServer: o.nfsServer, reporter });
    // Stopped with every other process by close().
    await startNfsServer(
      procs,
      ns,
      { dir: path.join(o.work, 'nfs'), exports: o.exports },
      reporter,
    );
  } catch (error) {
    await procs.stopAll();
    await net?.close();
    throw error;
  }
  const inside = ns;
  const network = net;
  const consoleOf = (server: string) => path.join(consoles, `${server}.log`);

  return {
    network: network.prefix,
    net: network,
    consoleOf,
    async start(spec: BootSpec): Promise<RunningServer> {
      const monitor = path.join(machines, `${spec.server}.monitor`);
      let ovmfVars: string | undefined;
      if (firmware === 'uefi') {
        ovmfVars = path.join(machines, `${spec.server}.OVMF_VARS.fd`);
        await copyFile(OVMF_VARS, ovmfVars).catch(() => {
          throw new DisklessError(`${OVMF_VARS}: not found; install the Debian package ovmf`);
        });
      }
      if (spec.ip === undefined) {
        throw new DisklessError(`server ${spec.name}: the QEMU runner needs its address`);
      }
      const ip = spec.ip;
      const mac = macOf(spec.server);
      const tap = await network.attach({ mac, ip });
      const args = machineArgs(spec, {
        console: consoleOf(spec.server),
        monitor,
        tap,
        firmware,
        ovmfVars,
      });
      const qemu = await inside
        .start(`qemu ${spec.name}`, 'qemu-system-x86_64', args, {
          log: path.join(machines, `${spec.server}.qemu.log`),
          debianPackage: 'qemu-system-x86',
        })
        .catch(async (error: unknown) => {
          await network.detach(tap);
          throw error;
        });
      reporter.info(`server ${spec.name} (${spec.server}): QEMU pid ${qemu.pid}, ${ip} (${mac})`);
      return {
        ip,
        exited: qemu.exited.then(() => network.detach(tap)),
        stop: () => procs.stop(qemu),
        shutdown: () => pressPowerButton(monitor),
      };
    },
    async close(): Promise<void> {
      await procs.stopAll();
      await network.close();
    },
  };
}
