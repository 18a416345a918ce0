/**
 * A private network and mount namespace for a boot test. The NFS master is an NFS server
 * itself: its kernel nfsd holds port 2049 and its rpcbind knows the NFS programs. The
 * test's rpcbind, nfs-ganesha and QEMU therefore run in a namespace of their own, with
 * their own loopback and their own /run (rpcbind's socket and lock live there), so they
 * never meet the master's NFS service and nothing they register outlives the test.
 *
 * A holder process (unshare ... sleep) keeps the namespace alive; each program is started
 * inside it with nsenter. Stopping the holder ends the namespace.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DisklessError } from '../errors.js';
import { lastLines, run } from '../process/run.js';
import type { Processes, StartOptions, Started } from './processes.js';

const READY = 'diskless-namespace-ready';

// Runs inside the new namespaces: loopback up, a private /run (and /var/lib/nfs, where
// NFS programs keep state), then wait.
const SETUP = [
  'set -e',
  'ip link set lo up',
  'mount -t tmpfs -o mode=0755 diskless-run /run',
  'mkdir -p /run/rpcbind /run/ganesha',
  'if [ -d /var/lib/nfs ]; then mount -t tmpfs -o mode=0755 diskless-nfs /var/lib/nfs; fi',
  `echo ${READY}`,
  'exec sleep infinity',
].join('\n');

export interface Namespace {
  holder: Started;
  /** Starts a program inside the namespace. */
  start: (name: string, cmd: string, args: readonly string[], o?: StartOptions) => Promise<Started>;
  /** Runs a command inside the namespace to its end; returns its stdout. */
  run: (cmd: string, args: readonly string[]) => Promise<string>;
}

/** Makes the namespace; its holder is stopped with the other processes of `procs`. */
export async function privateNamespace(procs: Processes, work: string): Promise<Namespace> {
  const log = path.join(work, 'namespace.log');
  const holder = await procs.start(
    'namespace',
    'unshare',
    [
      '--net',
      '--mount',
      '--propagation',
      'private',
      '--fork',
      '--kill-child',
      '--',
      'sh',
      '-c',
      SETUP,
    ],
    { log, debianPackage: 'util-linux' },
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await readFile(log, 'utf8').catch(() => '');
    if (text.includes(READY)) break;
    if (holder.done() || Date.now() > deadline) {
      await procs.stop(holder);
      throw new DisklessError(
        `could not make a private network and mount namespace for the boot test (unshare; needs root and the Debian packages util-linux and iproute2): ${lastLines(text) || 'no output'}`,
      );
    }
    await sleep(50);
  }
  const enter = (cmd: string, args: readonly string[]): string[] => [
    '--target',
    String(holder.pid),
    '--net',
    '--mount',
    '--',
    cmd,
    ...args,
  ];
  return {
    holder,
    start: (name, cmd, args, o = {}) => procs.start(name, 'nsenter', enter(cmd, args), o),
    run: async (cmd, args) => (await run('nsenter', enter(cmd, args))).stdout,
  };
}

/** TCP ports something listens on inside the namespace (ss from iproute2). */
export async function listeningPorts(ns: Namespace): Promise<Set<number>> {
  const out = await ns.run('ss', ['-Hltn']);
  const ports = new Set<number>();
  for (const line of out.split('\n')) {
    // State Recv-Q Send-Q Local:Port Peer:Port
    const local = line.trim().split(/\s+/)[3];
    const port = Number(local?.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port) && port > 0) ports.add(port);
  }
  return ports;
}
