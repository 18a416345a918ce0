/**
 * The local cloud's network, so that a server's nic:0:dhcp:ip is the address its VM really
 * has and this machine reaches it (a health check, ssh from the master). Inside the
 * runner's private namespace: a bridge (the servers' gateway, x.y.z.1/24), one tap per
 * machine on it, dnsmasq answering DHCP with one static lease per server (its MAC -> the
 * address the emulator shows), and the NFS server's address (the CDs' nfsroot=) on the
 * namespace's loopback, reached through the gateway. A veth pair puts this machine on the
 * bridge as x.y.z.254/24: its connected route is the route to the servers, and theirs back.
 *
 * The /24 is picked per runner (10.213.N.0/24 with no route of this machine overlapping it)
 * and claimed by creating the host end's name, dlcN: two runners never share one. When the
 * namespace ends, its taps, bridge and the veth pair (both ends) go with it; `close` also
 * deletes the host end itself.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lastLines, run } from '../process/run.js';
import type { Reporter } from '../report.js';
import type { Namespace } from '../boot/namespace.js';
import type { Processes, Started } from '../boot/processes.js';

/** Servers' networks are 10.213.N.0/24; N is picked per runner. */
const NETWORK_BASE = '10.213';
const BRIDGE = 'dlbr0';
const GATEWAY_HOST = 1;
const HOST_HOST = 254;
/** The first and last address a server may have (the gateway and this machine excluded). */
export const FIRST_SERVER_HOST = 2;
export const LAST_SERVER_HOST = 253;

export interface CloudNetwork {
  /** The servers' /24 as its first three octets, e.g. 10.213.7. */
  prefix: string;
  /** The bridge's address, the servers' gateway and DHCP server. */
  gateway: string;
  /** This machine's address on the servers' network, and its interface there. */
  hostAddress: string;
  hostInterface: string;
  /** dnsmasq's static leases and its lease database. */
  hostsFile: string;
  leaseFile: string;
  /** Puts a machine on the bridge with a static lease; returns its tap's name. */
  attach(server: { mac: string; ip: string }): Promise<string>;
  /** Takes the machine's tap off the bridge and forgets its lease. */
  detach(tap: string): Promise<void>;
  /** Deletes the host end of the veth pair (the namespace's end goes with the namespace). */
  close(): Promise<void>;
}

interface Route {
  dst: string;
}

/** The number of an IPv4 address, or undefined. */
function ipNumber(ip: string): number | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return undefined;
  }
  return parts.reduce((n, p) => n * 256 + p, 0);
}

/** True when `a.b.c.d/len` (a route's dst; "default" is never) overlaps the /24 `prefix`. */
export function overlaps(dst: string, prefix: string): boolean {
  if (dst === 'default') return false;
  const [address = '', bits = '32'] = dst.split('/');
  const start = ipNumber(address);
  const len = Number(bits);
  const net = ipNumber(`${prefix}.0`);
  if (start === undefined || net === undefined || !(len >= 0 && len <= 32)) return false;
  const common = Math.min(len, 24);
  const mask = common === 0 ? 0 : (0xffffffff << (32 - common)) >>> 0;
  return (start & mask) >>> 0 === (net & mask) >>> 0;
}

/** Checks that `ip` is a server's address on the network; one line naming it if not. */
export function checkServerAddress(ip: string, prefix: string): void {
  const last = Number(ip.slice(prefix.length + 1));
  const ok =
    ip.startsWith(`${prefix}.`) &&
    /^\d+$/.test(ip.slice(prefix.length + 1)) &&
    last >= FIRST_SERVER_HOST &&
    last <= LAST_SERVER_HOST;
  if (!ok) {
    throw new DisklessError(
      `server address ${JSON.stringify(ip)}: expected an address in ${prefix}.${FIRST_SERVER_HOST} to ${prefix}.${LAST_SERVER_HOST}, the local cloud's network`,
    );
  }
}

/** Claims a free 10.213.N.0/24 by creating the veth pair dlcNh (here) / dlcNn (in `ns`). */
async function claimNetwork(
  ns: Namespace,
  nfsServer: string,
): Promise<{ prefix: string; host: string; inside: string }> {
  const routes = JSON.parse(
    (await run('ip', ['-j', '-4', 'route', 'show', 'table', 'all'], { debianPackage: 'iproute2' }))
      .stdout || '[]',
  ) as Route[];
  const first = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const n = (first + i) % 250;
    const prefix = `${NETWORK_BASE}.${String(n)}`;
    if (overlaps(`${nfsServer}/32`, prefix) || routes.some((r) => overlaps(r.dst, prefix))) {
      continue;
    }
    const host = `dlc${String(n)}h`;
    const inside = `dlc${String(n)}n`;
    const made = await run('ip', [
      'link',
      'add',
      host,
      'type',
      'veth',
      'peer',
      'name',
      inside,
      'netns',
      String(ns.holder.pid),
    ]).then(
      () => true,
      (error: unknown) => {
        // Another runner's network: try the next one.
        if (error instanceof DisklessError && /File exists/.test(error.message)) return false;
        throw error;
      },
    );
    if (made) return { prefix, host, inside };
  }
  throw new DisklessError(`no free network ${NETWORK_BASE}.N.0/24 left for the local cloud`);
}

/** dnsmasq's DHCP server on the bridge: static leases only, never expiring, no DNS. */
export function dnsmasqArgs(o: { prefix: string; hostsFile: string; leaseFile: string }): string[] {
  return [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--port=0',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    `--interface=${BRIDGE}`,
    `--dhcp-range=${o.prefix}.0,static,255.255.255.0,infinite`,
    `--dhcp-hostsfile=${o.hostsFile}`,
    `--dhcp-leasefile=${o.leaseFile}`,
    '--dhcp-authoritative',
    '--no-ping',
    '--log-dhcp',
    '--log-facility=-',
    '--user=root',
    '--pid-file=',
  ];
}

/** The lease database without the leases no current static lease backs. */
export function keptLeases(leases: string, hosts: ReadonlyMap<string, string>): string {
  return leases
    .split('\n')
    .filter((line) => {
      // expiry mac ip hostname client-id
      const [, mac = '', ip = ''] = line.split(' ');
      return hosts.get(mac.toLowerCase()) === ip;
    })
    .map((line) => `${line}\n`)
    .join('');
}

/** Builds the network in `ns`; dnsmasq is (re)started with each machine attached. */
export async function startCloudNetwork(
  procs: Processes,
  ns: Namespace,
  o: { dir: string; nfsServer: string; reporter: Reporter },
): Promise<CloudNetwork> {
  const net = await wireNetwork(ns, o.nfsServer);
  o.reporter.info(
    `local cloud network ${net.prefix}.0/24: gateway ${net.gateway}, this machine ${net.hostAddress} (${net.host}), NFS server ${o.nfsServer} behind the gateway`,
  );
  const dhcp = await Dhcp.open(procs, ns, o.dir, net.prefix);
  return {
    prefix: net.prefix,
    gateway: net.gateway,
    hostAddress: net.hostAddress,
    hostInterface: net.host,
    hostsFile: dhcp.hostsFile,
    leaseFile: dhcp.leaseFile,
    attach: (server) => dhcp.attach(server),
    detach: (tap) => dhcp.detach(tap),
    close: net.close,
  };
}

/**
 * The claimed /24 wired up: the bridge with the gateway's address, the namespace's veth end
 * on it, the NFS server's address on the namespace's loopback, this machine's end up.
 */
async function wireNetwork(
  ns: Namespace,
  nfsServer: string,
): Promise<{
  prefix: string;
  gateway: string;
  hostAddress: string;
  host: string;
  close: () => Promise<void>;
}> {
  const { prefix, host, inside } = await claimNetwork(ns, nfsServer);
  const gateway = `${prefix}.${String(GATEWAY_HOST)}`;
  const hostAddress = `${prefix}.${String(HOST_HOST)}`;
  const close = async (): Promise<void> => {
    await run('ip', ['link', 'del', host]).catch(() => undefined); // gone with the namespace
  };
  const ip = (args: string[]) => ns.run('ip', args);
  try {
    await ip(['link', 'add', BRIDGE, 'type', 'bridge', 'forward_delay', '0']);
    await ip(['addr', 'add', `${gateway}/24`, 'dev', BRIDGE]);
    await ip(['link', 'set', BRIDGE, 'up']);
    await ip(['link', 'set', inside, 'master', BRIDGE, 'up']);
    await ip(['addr', 'add', `${nfsServer}/32`, 'dev', 'lo']);
    await run('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', host]);
    await run('ip', ['link', 'set', host, 'up']);
  } catch (error) {
    await close();
    throw error;
  }
  return { prefix, gateway, hostAddress, host, close };
}

/** The machines on the bridge and dnsmasq's static leases for them; one change at a time. */
class Dhcp {
  /** Each tap's MAC and address, in the order attached. */
  private readonly leases = new Map<string, { mac: string; ip: string }>();
  private dnsmasq: Started | undefined;
  private taps = 0;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly procs: Processes,
    private readonly ns: Namespace,
    private readonly prefix: string,
    readonly hostsFile: string,
    readonly leaseFile: string,
    private readonly log: string,
  ) {}

  static async open(procs: Processes, ns: Namespace, dir: string, prefix: string): Promise<Dhcp> {
    const hostsFile = path.join(dir, 'dhcp-hosts');
    const leaseFile = path.join(dir, 'dhcp-leases');
    const log = path.join(dir, 'dnsmasq.log');
    await writeFile(hostsFile, '');
    await writeFile(leaseFile, '');
    return new Dhcp(procs, ns, prefix, hostsFile, leaseFile, log);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private ip(args: string[]) {
    return this.ns.run('ip', args);
  }

  attach(server: { mac: string; ip: string }): Promise<string> {
    return this.serial(async () => {
      checkServerAddress(server.ip, this.prefix);
      const other = [...this.leases.values()].find((l) => l.ip === server.ip);
      if (other) {
        throw new DisklessError(
          `server address ${server.ip}: already leased to the running server with MAC ${other.mac}`,
        );
      }
      const tap = `dlt${String(this.taps++)}`;
      await this.ip(['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      await this.ip(['link', 'set', tap, 'master', BRIDGE, 'up']);
      this.leases.set(tap, server);
      try {
        await this.restart();
      } catch (error) {
        this.leases.delete(tap);
        await this.ip(['link', 'del', tap]).catch(() => undefined);
        throw error;
      }
      return tap;
    });
  }

  detach(tap: string): Promise<void> {
    return this.serial(async () => {
      this.leases.delete(tap);
      await this.ip(['link', 'del', tap]).catch(() => undefined);
    });
  }

  /** Restarts dnsmasq with the current static leases; returns once it serves DHCP. */
  private async restart(): Promise<void> {
    const { hostsFile, leaseFile, log } = this;
    if (this.dnsmasq) await this.procs.stop(this.dnsmasq);
    const leases = [...this.leases.values()];
    const macs = new Map(leases.map((l) => [l.mac.toLowerCase(), l.ip]));
    await writeFile(hostsFile, leases.map((l) => `${l.mac},${l.ip},infinite\n`).join(''));
    // A stale lease of a stopped server would keep its address from the next one.
    await writeFile(leaseFile, keptLeases(await readFile(leaseFile, 'utf8'), macs));
    const before = (await readFile(log, 'utf8').catch(() => '')).length;
    const started = await this.ns.start(
      'dnsmasq',
      'dnsmasq',
      dnsmasqArgs({ prefix: this.prefix, hostsFile, leaseFile }),
      {
        log,
        debianPackage: 'dnsmasq-base',
      },
    );
    this.dnsmasq = started;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const text = (await readFile(log, 'utf8').catch(() => '')).slice(before);
      if (/DHCP, static leases only/.test(text)) return;
      if (started.done() || Date.now() > deadline) {
        throw new DisklessError(
          `dnsmasq ${started.done() ? 'exited' : 'did not start serving DHCP within 10 s'}: ${lastLines(text) || 'no output'}`,
        );
      }
      await sleep(50);
    }
  }
}
