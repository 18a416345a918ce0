/**
 * The Proxmox VE emulator's state, one object per emulator: the nodes, tokens, storages,
 * VMs and tasks, the bandwidth link and the counters. The request handler (handle.ts) and
 * the upload call (upload.ts) are functions over it.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../../errors.js';
import { Link } from '../bandwidth.js';
import type { PveEmulatorOptions, PveEmulatorStats, PveLink, PveToken } from './options.js';
import { Storages } from './storage.js';
import { Tasks } from './tasks.js';
import { Vms } from './vms.js';

export interface PveState {
  host: string;
  nodes: string[];
  tokens: Map<string, PveToken>;
  /** How long a failed authentication waits before its answer. */
  authDelay: number;
  /** Where uploads stream to before their task moves them into place. */
  tmpDir: string;
  storages: Storages;
  vms: Vms;
  tasks: Tasks;
  stats: PveEmulatorStats;
  /** The number of the last upload (its temporary file's name). */
  uploadSeq: number;
  caps: PveLink;
  link: Link;
}

function checkOptions(o: PveEmulatorOptions): void {
  for (const t of o.tokens) {
    if (!/^[^\s!@]+@[^\s!@]+![A-Za-z][A-Za-z0-9._-]*$/.test(t.id) || t.secret === '') {
      throw new InputError(
        'tokens',
        `Invalid emulator token ${JSON.stringify(t.id)}: expected user@realm!tokenid and a non-empty secret`,
      );
    }
  }
  for (const vm of o.vms ?? []) {
    if (!Number.isInteger(vm.vmid) || vm.vmid < 100) {
      throw new InputError('vms', `Invalid VMID ${vm.vmid}: expected an integer of 100 or more`);
    }
  }
}

/** Checks the options and sets up the storages under options.dataDir. */
export async function openPveState(options: PveEmulatorOptions): Promise<PveState> {
  checkOptions(options);
  const nodes = options.nodes ?? ['pve'];
  const tmpDir = path.join(options.dataDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const storages = new Storages(options.dataDir, options.storages ?? [{ id: 'local' }], nodes);
  await storages.init();
  const vms = new Vms(options.vms ?? [], nodes, storages, options.runner);
  await vms.init().catch(async (error: unknown) => {
    await vms.close();
    throw error;
  });
  const tasks = new Tasks(options.taskMs ?? 50);
  const caps = options.link ?? {};
  return {
    host: options.host ?? '127.0.0.1',
    nodes,
    tokens: new Map<string, PveToken>(options.tokens.map((t) => [t.id, t])),
    authDelay: options.authFailureDelayMs ?? 3000,
    tmpDir,
    storages,
    vms,
    tasks,
    stats: {
      requests: 0,
      statuses: {},
      uploadBytes: 0,
      uploads: 0,
      tasks: tasks.counts,
    },
    uploadSeq: 0,
    caps,
    link: new Link(() => ({
      link: caps.linkBytesPerSecond,
      connection: caps.connectionBytesPerSecond,
    })),
  };
}
