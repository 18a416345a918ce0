/**
 * What runs a started server. Without a runner a server is state only (fast tests, the
 * API's overhead in benchmarks); the QEMU runner (qemu-runner.ts) boots it for real.
 * The emulator hands a runner the drives' files, so the runner needs no API access.
 */

/** One server to boot, as the emulator knows it at start or reset. */
export interface BootSpec {
  server: string;
  name: string;
  /** Memory in MB and virtual CPUs. */
  mem: number;
  smp: number;
  /** Attached drives in device order: the file holding each drive's bytes. */
  drives: { device: string; file: string; media: 'disk' | 'cdrom' }[];
  /** Devices to boot from, in order. */
  boot: string[];
  nicModel: string;
  /** The address the server gets: the one asked for (nic:0:dhcp) or an auto one. */
  ip: string | undefined;
}

/** A server a runner started. */
export interface RunningServer {
  /** The address its first NIC has. */
  ip: string;
  /** Settles when the machine stopped by itself (the guest powered off or crashed). */
  exited: Promise<void>;
  /** Pulls the plug; resolves once it is gone. */
  stop(): Promise<void>;
  /** Sends the ACPI power-down event; the machine stops when its OS has shut down. */
  shutdown(): Promise<void>;
}

export interface ServerRunner {
  /**
   * The /24 its servers' addresses are in, as the first three octets (e.g. 10.213.7);
   * nic:0:dhcp auto picks from it. Without one, 10.0.2.
   */
  readonly network?: string;
  start(spec: BootSpec): Promise<RunningServer>;
  /** Stops every machine and helper it started. */
  close(): Promise<void>;
}
