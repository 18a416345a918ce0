/**
 * The VMs side of a Proxmox rollout, shaped for the provider interface: list the QEMU
 * guests and what their CD-ROMs hold, repoint a CD with the config's `digest` (so a
 * concurrent edit is refused, not lost), restart (reset or reboot), read the state and
 * the guest agent's address, and the set of ISOs any config references
 * (proxmox-api.md sections 5 and 6).
 */
import { DisklessError } from '../errors.js';
import type { PveApi } from './api.js';
import { PveApiError } from './api-error.js';
import { waitTask, type WaitOptions } from './tasks.js';

export interface PveVm {
  vmid: number;
  node: string;
  name: string;
  /** From /cluster/resources: can be 10 s stale; vmState says what is now. */
  status: string;
  tags: string[];
  pool: string | undefined;
  template: boolean;
}

export interface CdDrive {
  /** ide2, sata0, scsi1, … */
  key: string;
  /** The first field of its value: `local:iso/x.iso`, `none` or `cdrom`. */
  volume: string;
}

export interface VmConfig {
  config: Record<string, string>;
  digest: string;
  cds: CdDrive[];
}

export interface VmState {
  running: boolean;
  /** The QEMU process: a reboot or start makes a new one, a reset keeps it. */
  pid: number | undefined;
  uptime: number;
  /** The first IPv4 address of a non-loopback interface the guest agent reports, if it answers. */
  address: string | undefined;
}

const CD_KEY = /^(ide\d|sata\d|scsi\d+)$/;

function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function vmPath(vm: { node: string; vmid: number }): string {
  return `/nodes/${encodeURIComponent(vm.node)}/qemu/${vm.vmid}`;
}

/** The CD-ROM drives of a config (media=cdrom), each with its volume. */
export function cdDrives(config: Record<string, unknown>): CdDrive[] {
  const out: CdDrive[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (!CD_KEY.test(key) || typeof value !== 'string') continue;
    const fields = value.split(',');
    if (!fields.slice(1).includes('media=cdrom')) continue;
    out.push({ key, volume: fields[0] ?? '' });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Every QEMU guest of the cluster (templates included), by VMID. */
export async function listVms(api: PveApi): Promise<PveVm[]> {
  const items = await api.call<Record<string, unknown>[]>('GET', '/cluster/resources', {
    type: 'vm',
  });
  return items
    .filter((r) => r.type === 'qemu')
    .map((r) => ({
      vmid: num(r.vmid),
      node: String(r.node),
      name: typeof r.name === 'string' ? r.name : '',
      status: typeof r.status === 'string' ? r.status : 'unknown',
      tags: typeof r.tags === 'string' ? r.tags.split(/[;,\s]+/).filter((t) => t !== '') : [],
      pool: typeof r.pool === 'string' ? r.pool : undefined,
      template: num(r.template) === 1,
    }))
    .sort((a, b) => a.vmid - b.vmid);
}

export async function readConfig(
  api: PveApi,
  vm: { node: string; vmid: number },
): Promise<VmConfig> {
  const raw = await api.call<Record<string, unknown>>('GET', `${vmPath(vm)}/config`);
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) config[k] = typeof v === 'string' ? v : String(v);
  const digest = config.digest ?? '';
  if (!/^[0-9a-f]{40}$/.test(digest)) {
    throw new DisklessError(
      `GET ${api.base}${vmPath(vm)}/config: expected a config with a 40-hex digest, got ${JSON.stringify(digest)}`,
    );
  }
  return { config, digest, cds: cdDrives(raw) };
}

/**
 * Points the CD drive `key` at `volid` with the digest the config was read with: a
 * config changed since (by someone else) is refused by Proxmox, not overwritten.
 */
export async function repointCd(
  api: PveApi,
  vm: { node: string; vmid: number },
  key: string,
  volid: string,
  digest: string,
): Promise<void> {
  if (!CD_KEY.test(key))
    throw new DisklessError(`VM ${vm.vmid}: ${key} is not a drive that can be a CD-ROM`);
  try {
    await api.call('PUT', `${vmPath(vm)}/config`, { [key]: `${volid},media=cdrom`, digest });
  } catch (error) {
    if (error instanceof PveApiError && /checksum mismatch|file change/i.test(error.detail)) {
      throw new DisklessError(
        `VM ${vm.vmid}: its config changed while the rollout read it (digest ${digest.slice(0, 8)}… is stale): ${error.message}`,
      );
    }
    throw error;
  }
}

/** Restarts a VM (reset: same QEMU process; reboot: shutdown, then a new start) and waits for the task. */
export async function restartVm(
  api: PveApi,
  vm: { node: string; vmid: number },
  how: 'reset' | 'reboot' | 'start' | 'stop',
  wait: WaitOptions = {},
): Promise<void> {
  const upid = await api.call<string>('POST', `${vmPath(vm)}/status/${how}`);
  await waitTask(api, upid, `VM ${vm.vmid} ${how}`, wait);
}

function agentAddress(answer: unknown): string | undefined {
  const result = (answer as { result?: unknown } | null)?.result;
  if (!Array.isArray(result)) return undefined;
  for (const iface of result as Record<string, unknown>[]) {
    if (iface.name === 'lo') continue;
    const addrs = Array.isArray(iface['ip-addresses'])
      ? (iface['ip-addresses'] as Record<string, unknown>[])
      : [];
    // The first IPv4 address of a real interface (not lo), not a link-local one.
    const v4 = addrs.find(
      (a) => a['ip-address-type'] === 'ipv4' && !String(a['ip-address']).startsWith('169.254.'),
    );
    if (v4) return String(v4['ip-address']);
  }
  return undefined;
}

/** The VM's state now (status/current) and, when its agent answers, its address. */
export async function vmState(api: PveApi, vm: { node: string; vmid: number }): Promise<VmState> {
  const s = await api.call<Record<string, unknown>>('GET', `${vmPath(vm)}/status/current`);
  const running = s.status === 'running';
  let address: string | undefined;
  if (running && s.agent !== undefined && num(s.agent) === 1) {
    try {
      address = agentAddress(await api.call('GET', `${vmPath(vm)}/agent/network-get-interfaces`));
    } catch (error) {
      // No agent, or not up yet: the health check's own URL decides then.
      if (!(error instanceof PveApiError && error.status === 500)) throw error;
    }
  }
  return {
    running,
    pid: s.pid === undefined ? undefined : num(s.pid),
    uptime: num(s.uptime ?? 0),
    address,
  };
}

/**
 * Every ISO volume a VM's CD-ROM references, current or pending, across all QEMU
 * guests and templates (Proxmox keeps no reference count: DELETE never checks).
 */
export async function isosInUse(api: PveApi, vms?: PveVm[]): Promise<Map<string, number[]>> {
  const used = new Map<string, number[]>();
  for (const vm of vms ?? (await listVms(api))) {
    const pending = await api.call<{ key: string; value?: unknown; pending?: unknown }[]>(
      'GET',
      `${vmPath(vm)}/pending`,
    );
    const values: Record<string, unknown> = {};
    for (const p of pending) {
      for (const v of [p.value, p.pending]) {
        if (typeof v !== 'string') continue;
        for (const cd of cdDrives({ [p.key]: v })) {
          if (!cd.volume.includes(':')) continue;
          values[cd.volume] = true;
        }
      }
    }
    for (const volid of Object.keys(values)) used.set(volid, [...(used.get(volid) ?? []), vm.vmid]);
  }
  return used;
}
