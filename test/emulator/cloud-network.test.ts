/**
 * The local cloud's network without a VM (needs root, iproute2, dnsmasq-base, busybox):
 * the namespace, its bridge and this machine's veth end with the route to the servers;
 * dnsmasq leasing a server's MAC exactly its address (a real DHCP client, busybox udhcpc,
 * in a namespace of its own on the bridge), a stale lease not keeping the address from the
 * next server; this machine reaching the "server" over TCP; and nothing left after close.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateNamespace, type Namespace } from '../../src/boot/namespace.js';
import { Processes } from '../../src/boot/processes.js';
import {
  checkServerAddress,
  keptLeases,
  overlaps,
  startCloudNetwork,
  type CloudNetwork,
} from '../../src/emulator/cloud-network.js';
import { run } from '../../src/process/run.js';
import { silentReporter } from '../../src/report.js';
import { tcpGreeting } from './tcp.js';

const NFS_SERVER = '10.0.2.100';

describe('overlaps and checkServerAddress', () => {
  it('finds the routes that cover or fall inside a /24', () => {
    expect(overlaps('10.213.7.0/24', '10.213.7')).toBe(true);
    expect(overlaps('10.0.0.0/8', '10.213.7')).toBe(true);
    expect(overlaps('10.213.7.9', '10.213.7')).toBe(true);
    expect(overlaps('10.213.7.128/25', '10.213.7')).toBe(true);
    expect(overlaps('10.213.8.0/24', '10.213.7')).toBe(false);
    expect(overlaps('default', '10.213.7')).toBe(false);
  });

  it("refuses a server address outside the cloud's network or on its gateway, naming it", () => {
    expect(() => {
      checkServerAddress('10.213.7.20', '10.213.7');
    }).not.toThrow();
    for (const ip of ['10.0.2.20', '10.213.7.1', '10.213.7.254', '10.213.70.2']) {
      expect(() => {
        checkServerAddress(ip, '10.213.7');
      }).toThrow(
        `server address "${ip}": expected an address in 10.213.7.2 to 10.213.7.253, the local cloud's network`,
      );
    }
  });

  it('keeps only the leases a static lease backs', () => {
    const leases = '0 52:54:00:aa:aa:aa 10.213.7.15 * *\n0 52:54:00:bb:bb:bb 10.213.7.16 * *\n';
    expect(keptLeases(leases, new Map([['52:54:00:aa:aa:aa', '10.213.7.15']]))).toBe(
      '0 52:54:00:aa:aa:aa 10.213.7.15 * *\n',
    );
  });
});

describe('the network of a runner, with a DHCP client instead of a VM', () => {
  let dir: string;
  let procs: Processes;
  let ns: Namespace;
  let net: CloudNetwork;

  /** Runs a busybox DHCP client as `mac` on a veth on the bridge; the address it was offered. */
  async function lease(mac: string): Promise<string> {
    const sh = (script: string) => ns.run('sh', ['-ec', script]);
    await sh(
      `ip netns add client; ip link add dlcl0 type veth peer name dlcl1 netns client
       ip link set dlcl0 master dlbr0 up
       ip -n client link set dlcl1 address ${mac} up`,
    );
    try {
      const out = await sh(
        'ip netns exec client busybox udhcpc -i dlcl1 -n -q -f -t 3 -T 1 -s /bin/true 2>&1 || true',
      );
      return /lease of (\S+) obtained/.exec(out)?.[1] ?? out;
    } finally {
      await sh('ip link del dlcl0; ip netns del client');
    }
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-cloud-net-'));
    procs = new Processes();
    ns = await privateNamespace(procs, dir);
    net = await startCloudNetwork(procs, ns, {
      dir,
      nfsServer: NFS_SERVER,
      reporter: silentReporter,
    });
  }, 60_000);

  afterAll(async () => {
    await procs.stopAll();
    await net.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("puts this machine on the servers' network, the NFS server behind the gateway", async () => {
    expect(net.prefix).toMatch(/^10\.213\.\d+$/);
    const [route] = JSON.parse(
      (await run('ip', ['-j', 'route', 'get', `${net.prefix}.20`])).stdout,
    ) as { dev: string; prefsrc: string }[];
    expect(route).toMatchObject({ dev: net.hostInterface, prefsrc: net.hostAddress });
    const inside = await ns.run('ip', ['-4', '-o', 'addr', 'show']);
    expect(inside).toContain(`inet ${net.gateway}/24`);
    expect(inside).toContain(`inet ${NFS_SERVER}/32`);
  });

  it('leases each MAC its static address; a stopped server leaves its address free', async () => {
    const first = `${net.prefix}.15`;
    const tap = await net.attach({ mac: '52:54:00:aa:aa:01', ip: first });
    expect(await readFile(net.hostsFile, 'utf8')).toBe(`52:54:00:aa:aa:01,${first},infinite\n`);
    expect(await lease('52:54:00:aa:aa:01')).toBe(first);
    expect(await readFile(net.leaseFile, 'utf8')).toContain(`52:54:00:aa:aa:01 ${first}`);
    // An unknown MAC gets nothing: static leases only.
    expect(await lease('52:54:00:aa:aa:09')).toContain('no lease');
    await net.detach(tap);
    // The next server gets the same address with another MAC.
    await net.attach({ mac: '52:54:00:aa:aa:02', ip: first });
    expect(await lease('52:54:00:aa:aa:02')).toBe(first);
    expect(await readFile(net.leaseFile, 'utf8')).not.toContain('52:54:00:aa:aa:01');
  }, 60_000);

  it('is reached from this machine at the leased address', async () => {
    const ip = `${net.prefix}.30`;
    const sh = (script: string) => ns.run('sh', ['-ec', script]);
    await sh(
      `ip netns add server; ip link add dlsv0 type veth peer name dlsv1 netns server
       ip link set dlsv0 master dlbr0 up
       ip -n server link set dlsv1 up; ip -n server addr add ${ip}/24 dev dlsv1`,
    );
    const listener = await ns.start('listener', 'ip', [
      'netns',
      'exec',
      'server',
      process.execPath,
      '-e',
      "require('net').createServer((s) => s.end('hello from the server\\n')).listen(22)",
    ]);
    try {
      let answer = '';
      for (let i = 0; i < 50 && answer === ''; i++) {
        answer = await tcpGreeting(ip, 22, 2000).catch(() => '');
        if (answer === '') await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toBe('hello from the server\n');
    } finally {
      await procs.stop(listener);
      await sh('ip link del dlsv0; ip netns del server');
    }
  }, 60_000);

  it('leaves no interface, route or process behind', async () => {
    const dnsmasq = procs.running().filter((p) => p.name === 'dnsmasq');
    expect(dnsmasq).toHaveLength(1);
    await procs.stopAll();
    await net.close();
    expect(procs.running()).toEqual([]);
    const links = (await run('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toContain(`${net.hostInterface}@`);
    const routes = JSON.parse((await run('ip', ['-j', '-4', 'route', 'show'])).stdout) as {
      dst: string;
    }[];
    expect(routes.filter((r) => overlaps(r.dst, net.prefix))).toEqual([]);
  }, 30_000);
});
