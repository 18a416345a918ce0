/**
 * The Proxmox VE provider (proxmox-api.md sections 3 to 6) over the client of upload-pve
 * (src/proxmox), so it has the same token auth, TLS trust and one-line errors. A server
 * is a QEMU guest (templates left out), its id the VMID; an artifact is an ISO volume
 * (`local:iso/diskless-1a2b3c4d.iso`) on the storage the rollout names.
 *
 * - Repointing sets the CD drive with the `digest` the VM's config had when this provider
 *   last read it (the plan's listing), so an edit by someone else in between is refused by
 *   Proxmox and reported, never overwritten.
 * - Restarting is a reset (same QEMU process: Proxmox's uptime and pid do not change, so
 *   the provider notes when its reset task ended, and `started` shows that) or a reboot
 *   (a new process).
 * - Proxmox cannot tell which ISO a running guest booted (the CD is swapped live), so no
 *   artifact is "claimed": every running VM of a rollout is restarted, also one whose CD
 *   already names the new ISO, and afterwards it runs what its CD names.
 * - The address is the guest agent's, when the VM has an agent that answers.
 */
import { DisklessError } from '../errors.js';
import { familyOf } from '../upload/family.js';
import { PveApi } from '../proxmox/api.js';
import type { PveTls } from '../proxmox/tls.js';
import type { WaitOptions } from '../proxmox/tasks.js';
import { listIsos } from '../proxmox/upload.js';
import {
  cdDrives,
  listVms,
  readConfig,
  repointCd,
  restartVm,
  vmState,
  type PveVm,
  type VmState,
} from '../proxmox/vms.js';
import type { ArtifactView, Provider, ServerView } from './provider.js';

export type RestartMethod = 'reset' | 'reboot';

export interface ProxmoxProviderOptions {
  /** The node whose storage listing names the ISOs (any node, for a shared storage). */
  node: string;
  /** The storage holding the family's ISOs. */
  storage: string;
  restartMethod: RestartMethod;
  wait?: WaitOptions;
}

/** `local:iso/diskless-1a2b3c4d.iso` -> `diskless-1a2b3c4d.iso`. */
function fileOf(volid: string): string {
  return volid.replace(/^[^:]*:(iso\/)?/, '');
}

export function isoArtifact(volid: string): ArtifactView {
  const name = fileOf(volid);
  return {
    id: volid,
    name,
    release: undefined,
    sha256: undefined,
    family: familyOf(name.replace(/\.(iso|img)$/i, '')),
    claimedBy: [],
  };
}

export class ProxmoxProvider implements Provider {
  readonly kind = 'proxmox';
  /** VMID -> the VM as last listed (its node). */
  private readonly vms = new Map<string, PveVm>();
  /** VMID -> the digest of its config as this provider last read or wrote it. */
  private readonly digests = new Map<string, string>();
  /** VMID -> when this provider's reset of it ended, Unix seconds. */
  private readonly resets = new Map<string, number>();

  constructor(
    readonly api: PveApi,
    readonly o: ProxmoxProviderOptions,
  ) {}

  private vm(id: string): PveVm {
    const vm = this.vms.get(id);
    if (!vm) throw new DisklessError(`VM ${id}: not in the cluster's VM listing`);
    return vm;
  }

  /** The VM's config and state now, as a ServerView; remembers its config's digest. */
  private async view(vm: PveVm): Promise<ServerView> {
    const [config, state] = await Promise.all([readConfig(this.api, vm), vmState(this.api, vm)]);
    const id = String(vm.vmid);
    this.digests.set(id, config.digest);
    const cds: Record<string, string> = {};
    for (const cd of config.cds) if (cd.volume.includes(':')) cds[cd.key] = cd.volume;
    return {
      id,
      name: vm.name,
      tags: vm.tags,
      pool: vm.pool,
      status: state.running ? 'running' : 'stopped',
      running: state.running,
      started: this.started(id, state),
      address: state.address,
      cds,
    };
  }

  /** The QEMU process's start, or this provider's later reset of it. */
  private started(id: string, state: VmState): number | undefined {
    if (!state.running) return undefined;
    const boot = Math.floor(Date.now() / 1000) - state.uptime;
    const reset = this.resets.get(id);
    return reset !== undefined && reset > boot ? reset : boot;
  }

  async listServers(): Promise<ServerView[]> {
    const vms = (await listVms(this.api)).filter((v) => !v.template);
    for (const vm of vms) this.vms.set(String(vm.vmid), vm);
    const views = await Promise.all(vms.map((vm) => this.view(vm)));
    return views.sort((a, b) => a.name.localeCompare(b.name) || Number(a.id) - Number(b.id));
  }

  async server(id: string): Promise<ServerView> {
    if (!this.vms.has(id)) await this.listServers();
    return this.view(this.vm(id));
  }

  async listArtifacts(): Promise<ArtifactView[]> {
    const items = await listIsos(this.api, this.o.node, this.o.storage);
    return items.map((i) => isoArtifact(i.volid));
  }

  async artifact(id: string): Promise<ArtifactView> {
    const all = await this.listArtifacts();
    const found = all.find((a) => a.id === id);
    if (!found) {
      throw new DisklessError(
        `ISO ${id}: there is no such file on storage ${this.o.storage} of node ${this.o.node} at ${this.api.base} (ISOs there: ${all.map((a) => a.name).join(', ') || 'none'})`,
      );
    }
    return found;
  }

  async repoint(server: string, device: string, artifact: string): Promise<void> {
    const vm = this.vm(server);
    const digest = this.digests.get(server);
    if (digest === undefined) throw new DisklessError(`VM ${server}: its config was never read`);
    await repointCd(this.api, vm, device, artifact, digest);
    // The config as it is now: its new digest (for a revert) and proof of the change.
    const after = await readConfig(this.api, vm);
    this.digests.set(server, after.digest);
    const now = cdDrives(after.config).find((c) => c.key === device)?.volume;
    if (now !== artifact) {
      throw new DisklessError(
        `VM ${server}: after the config call its ${device} holds ${now ?? 'nothing'}, not ${artifact}`,
      );
    }
  }

  async restart(server: string): Promise<void> {
    const vm = this.vm(server);
    await restartVm(this.api, vm, this.o.restartMethod, this.o.wait);
    if (this.o.restartMethod === 'reset') this.resets.set(server, Math.floor(Date.now() / 1000));
  }

  close(): Promise<void> {
    return this.api.close();
  }
}

/** A provider over a new Proxmox client with upload-pve's connection settings. */
export function proxmox(
  o: ProxmoxProviderOptions & { url: string; tokenId: string; secret: string; tls: PveTls },
): ProxmoxProvider {
  return new ProxmoxProvider(
    new PveApi({ url: o.url, tokenId: o.tokenId, secret: o.secret, tls: o.tls }),
    o,
  );
}
