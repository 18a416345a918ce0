/**
 * QEMU guests: each VM's config (with the SHA1 `digest` of its config file), its power
 * state and QEMU process, its guest agent's address. The config call keeps Proxmox's
 * rules for CD-ROM drives (media=cdrom required for an ISO, the ISO must exist, `size=`
 * appended) and the digest check against concurrent edits (proxmox-api.md section 5).
 *
 * Without a runner a VM is state only. With one (the ElasticStack emulator's server
 * runner, e.g. its QEMU runner) a started VM boots its CD-ROM ISOs for real. The runner
 * has no in-place reset, so a reset here stops the machine and boots a new one from the
 * config as it is now: inside the guest that is what Proxmox's reset gives after a live
 * CD swap (a reboot from the new ISO), while the API keeps the pid, as Proxmox does.
 */
import { createHash } from 'node:crypto';
import { DisklessError } from '../../errors.js';
import type { RunningServer, ServerRunner } from '../server-runner.js';
import { failure, paramError } from './pve-error.js';
import type { PveVmSpec } from './options.js';
import type { Storages } from './storage.js';

export interface Vm {
  vmid: number;
  node: string;
  config: Record<string, string | number>;
  running: boolean;
  pid: number | undefined;
  startedAt: number;
  address: string | undefined;
  pool: string | undefined;
}

const DRIVE_KEY = /^(ide[0-3]|sata[0-5]|scsi([0-9]|[12][0-9]|30))$/;
const INTEGER_KEYS = new Set(['memory', 'cores', 'sockets', 'onboot', 'balloon', 'cpuunits']);
const OPTION_KEYS = new Set(['name', 'tags', 'boot', 'agent', 'description', 'ostype', 'bios']);
const NET_KEY = /^net[0-3]$/;

/** Whether a key is one the config call accepts. */
function knownKey(key: string): boolean {
  return DRIVE_KEY.test(key) || INTEGER_KEYS.has(key) || OPTION_KEYS.has(key) || NET_KEY.test(key);
}

/** The privilege a config key needs (VM.Config.CDROM for CD drives). */
export function configPrivilege(key: string, value: string | undefined): string {
  if (DRIVE_KEY.test(key))
    return value === undefined || isCdrom(value) ? 'VM.Config.CDROM' : 'VM.Config.Disk';
  if (key === 'memory' || key === 'balloon') return 'VM.Config.Memory';
  if (key === 'cores' || key === 'sockets' || key === 'cpuunits') return 'VM.Config.CPU';
  if (NET_KEY.test(key)) return 'VM.Config.Network';
  return 'VM.Config.Options';
}

function isCdrom(value: string): boolean {
  return value.split(',').slice(1).includes('media=cdrom');
}

/** Proxmox's format_size: exact bytes, or K/M/G/T when evenly divisible. */
export function formatSize(bytes: number): string {
  for (const [unit, power] of [
    ['T', 4],
    ['G', 3],
    ['M', 2],
    ['K', 1],
  ] as const) {
    const f = 1024 ** power;
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return String(bytes);
}

/** The first field of a drive value (the volume), e.g. `local:iso/x.iso`. */
export function driveVolume(value: string): string {
  return value.split(',')[0] ?? '';
}

/** Whether the guest agent is enabled in a config (`1` or `enabled=1,…`). */
function agentEnabled(config: Record<string, string | number>): boolean {
  const v = config.agent;
  if (v === undefined) return false;
  const first = String(v).split(',')[0] ?? '';
  return first === '1' || first === 'enabled=1';
}

/** A stable UUID-shaped id per VMID for the runner (its MAC and file names come from it). */
export function machineId(vmid: number): string {
  const h = createHash('sha1').update(`pve-vm-${vmid}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The runner's IDE slots for a VM's CD-ROMs, the boot CD first. The runner attaches drives
 * without a bootindex, and its SeaBIOS boots a CD on the primary channel but not one at
 * bus 1 unit 0 (where Proxmox's ide2 is), so the slots are not Proxmox's bus:unit.
 */
const RUNNER_SLOTS = ['ide:0:1', 'ide:0:0', 'ide:1:1', 'ide:1:0'];

/** The VM's CD-ROM keys, the one its `boot: order=` names first (else ide2, ide0, …) first. */
function bootFirst(config: Record<string, string | number>, keys: string[]): string[] {
  const order = /order=([^,]+)/.exec(String(config.boot ?? ''))?.[1]?.split(';') ?? [];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export class Vms {
  private readonly vms = new Map<number, Vm>();
  private readonly machines = new Map<number, RunningServer>();
  private nextPid = 20_000;

  constructor(
    specs: PveVmSpec[],
    private readonly nodes: string[],
    private readonly storages: Storages,
    private readonly runner?: ServerRunner,
  ) {
    for (const s of specs) {
      const node = s.node ?? nodes[0] ?? 'pve';
      const config: Record<string, string | number> = { name: s.name, ...s.config };
      if (s.tags && s.tags.length > 0)
        config.tags = [...s.tags]
          .map((t) => t.toLowerCase())
          .sort()
          .join(';');
      this.vms.set(s.vmid, {
        vmid: s.vmid,
        node,
        config,
        running: false,
        pid: undefined,
        startedAt: 0,
        address: s.address,
        pool: s.pool,
      });
      if (s.running && !runner) this.powerOn(this.vms.get(s.vmid) as Vm);
    }
    this.initiallyRunning = specs.filter((s) => s.running).map((s) => s.vmid);
  }

  private readonly initiallyRunning: number[];

  /** With a runner, boots the VMs that start running (their machines take a while). */
  async init(): Promise<void> {
    if (!this.runner) return;
    for (const vmid of this.initiallyRunning) await this.start(this.vms.get(vmid) as Vm);
  }

  /** Stops every machine and the runner. */
  async close(): Promise<void> {
    const all = [...this.machines.values()];
    this.machines.clear();
    await Promise.all(all.map((m) => m.stop()));
    await this.runner?.close();
  }

  /** With a runner: a machine booting the VM's CD-ROMs as its config says now. */
  private async boot(vm: Vm): Promise<void> {
    if (!this.runner) return;
    const cds = Object.keys(vm.config).filter(
      (k) => DRIVE_KEY.test(k) && isCdrom(String(vm.config[k])),
    );
    const drives: { device: string; file: string; media: 'cdrom' }[] = [];
    for (const key of bootFirst(vm.config, cds)) {
      const file = this.storages.volumePath(driveVolume(String(vm.config[key])), vm.node)?.file;
      const device = RUNNER_SLOTS[drives.length];
      if (!file) continue;
      if (device === undefined) {
        throw new DisklessError(`VM ${vm.vmid}: the emulator boots at most 4 CD-ROMs`);
      }
      drives.push({ device, file, media: 'cdrom' });
    }
    if (vm.address === undefined) {
      throw failure(`VM ${vm.vmid}: the emulator's machines need an address (the VM's address)`);
    }
    const machine = await this.runner.start({
      server: machineId(vm.vmid),
      name: String(vm.config.name ?? vm.vmid),
      mem: Number(vm.config.memory ?? 512),
      smp: Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1),
      drives,
      boot: drives.map((d) => d.device),
      nicModel: 'e1000',
      ip: vm.address,
    });
    this.machines.set(vm.vmid, machine);
    // The guest powered off by itself: the VM is stopped.
    void machine.exited.then(() => {
      if (this.machines.get(vm.vmid) !== machine) return;
      this.machines.delete(vm.vmid);
      vm.running = false;
      vm.pid = undefined;
    });
  }

  private async halt(vm: Vm): Promise<void> {
    const machine = this.machines.get(vm.vmid);
    this.machines.delete(vm.vmid);
    await machine?.stop();
  }

  all(): Vm[] {
    return [...this.vms.values()].sort((a, b) => a.vmid - b.vmid);
  }

  /** The VM on `node`, or Proxmox's 500 for a config file that is not there. */
  get(node: string, vmid: number): Vm {
    const vm = this.vms.get(vmid);
    if (!vm || vm.node !== node) {
      throw failure(`Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`);
    }
    return vm;
  }

  /** The config file's text: what the digest is taken over. */
  static configText(vm: Vm): string {
    return Object.entries(vm.config)
      .map(([k, v]) => `${k}: ${String(v)}\n`)
      .join('');
  }

  digest(vm: Vm): string {
    return createHash('sha1').update(Vms.configText(vm)).digest('hex');
  }

  /** Refuses changes to a locked VM. */
  checkLock(vm: Vm): void {
    if (vm.config.lock !== undefined) throw failure(`VM is locked (${String(vm.config.lock)})`);
  }

  /**
   * Validates the config call's parameters (400s), checks the digest (500): what the call
   * will set and delete. Runs before the worker, as Proxmox does.
   */
  prepareUpdate(
    vm: Vm,
    params: Record<string, string>,
    post: boolean,
  ): { set: Record<string, string>; remove: string[] } {
    const errors: Record<string, string> = {};
    const set: Record<string, string> = {};
    const remove: string[] = [];
    for (const [key, value] of Object.entries(params)) {
      if (key === 'digest') {
        if (!/^[a-f0-9]{40}$/i.test(value))
          errors.digest = `value does not match the regex pattern`;
      } else if (key === 'delete') {
        for (const k of value.split(/[,;\s]+/).filter((x) => x !== '')) {
          if (!knownKey(k)) errors.delete = `invalid configuration key '${k}'`;
          else remove.push(k);
        }
      } else if (key === 'background_delay' && post) {
        if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 30) {
          errors[key] = 'value must have a minimum value of 1 and a maximum value of 30';
        }
      } else if (key === 'cdrom') {
        set.ide2 = isCdrom(value) ? value : `${value},media=cdrom`;
      } else if (!knownKey(key)) {
        errors[key] =
          'property is not defined in schema and the schema does not allow additional properties';
      } else if (INTEGER_KEYS.has(key) && !/^-?\d+$/.test(value)) {
        errors[key] = `type check ('integer') failed - got '${value}'`;
      } else {
        set[key] = value;
      }
    }
    for (const [key, value] of Object.entries(set)) {
      if (!DRIVE_KEY.test(key)) continue;
      const volume = driveVolume(value);
      if (/:iso\//.test(volume) && !isCdrom(value)) {
        errors[key] = "explicit 'media=cdrom' is required for iso images";
      }
    }
    if (Object.keys(errors).length > 0) throw paramError(errors);
    this.checkLock(vm);
    const digest = params.digest;
    if (digest !== undefined && digest.toLowerCase() !== this.digest(vm)) {
      throw failure('checksum mismatch (file change by other user?)');
    }
    return { set, remove };
  }

  /** Applies a prepared update: ISO volumes must exist; CDs get their `size=`. */
  async applyUpdate(
    vm: Vm,
    update: { set: Record<string, string>; remove: string[] },
  ): Promise<void> {
    const values: Record<string, string | number> = {};
    for (const [key, value] of Object.entries(update.set)) {
      if (DRIVE_KEY.test(key) && isCdrom(value)) {
        const volume = driveVolume(value);
        const old = vm.config[key];
        if (old !== undefined && DRIVE_KEY.test(key) && !isCdrom(String(old)) && vm.running) {
          throw failure('unable to change media type');
        }
        if (volume === 'none' || volume === 'cdrom') {
          values[key] = value;
          continue;
        }
        const size = await this.storages.volumeSize(volume, vm.node);
        const rest = value
          .split(',')
          .slice(1)
          .filter((f) => !f.startsWith('size='));
        values[key] = [volume, ...rest, `size=${formatSize(size)}`].join(',');
      } else {
        values[key] = INTEGER_KEYS.has(key) ? Number(value) : value;
      }
    }
    for (const key of update.remove) Reflect.deleteProperty(vm.config, key);
    Object.assign(vm.config, values);
  }

  /** Changes behind the API's back (another user's edit): the digest changes. */
  edit(vmid: number, changes: Record<string, string | number>): void {
    const vm = this.vms.get(vmid);
    if (!vm) throw new Error(`no VM ${vmid}`);
    Object.assign(vm.config, changes);
  }

  private powerOn(vm: Vm): void {
    vm.running = true;
    vm.pid = ++this.nextPid;
    vm.startedAt = Date.now();
  }

  /** qmstart: refuses a running VM; every ISO it references must exist (activation). */
  async start(vm: Vm): Promise<void> {
    if (vm.running) throw failure(`VM ${vm.vmid} already running`);
    for (const [key, value] of Object.entries(vm.config)) {
      if (!DRIVE_KEY.test(key)) continue;
      const volume = driveVolume(String(value));
      if (/:iso\//.test(volume)) await this.storages.volumeSize(volume, vm.node);
    }
    await this.boot(vm);
    this.powerOn(vm);
  }

  async stop(vm: Vm): Promise<void> {
    vm.running = false;
    vm.pid = undefined;
    await this.halt(vm);
  }

  /** qmreset: the guest restarts at once (a machine boots the config as it is now). */
  async reset(vm: Vm): Promise<void> {
    this.assertRunning(vm);
    if (!this.runner) return;
    await this.halt(vm);
    await this.boot(vm);
  }

  /** The synchronous check of reset and reboot: 500 when the VM does not run. */
  assertRunning(vm: Vm): void {
    if (!vm.running) throw failure(`VM ${vm.vmid} not running`);
  }

  /** reboot: a shutdown, then a fresh start (a new QEMU process). */
  async reboot(vm: Vm): Promise<void> {
    this.assertRunning(vm);
    await this.stop(vm);
    await this.start(vm);
  }

  /** The object of status/current. */
  status(vm: Vm): Record<string, unknown> {
    const s = vm.running ? 'running' : 'stopped';
    return {
      vmid: vm.vmid,
      name: vm.config.name,
      status: s,
      qmpstatus: s,
      uptime: vm.running ? Math.floor((Date.now() - vm.startedAt) / 1000) : 0,
      ...(vm.pid === undefined ? {} : { pid: vm.pid }),
      cpus: Number(vm.config.cores ?? 1) * Number(vm.config.sockets ?? 1),
      maxmem: Number(vm.config.memory ?? 512) * 2 ** 20,
      ha: { managed: 0 },
      ...(agentEnabled(vm.config) ? { agent: 1 } : {}),
      ...(vm.config.tags === undefined ? {} : { tags: vm.config.tags }),
      ...(vm.config.lock === undefined ? {} : { lock: vm.config.lock }),
    };
  }

  /** An entry of /cluster/resources. */
  resource(vm: Vm): Record<string, unknown> {
    const st = this.status(vm);
    return {
      id: `qemu/${vm.vmid}`,
      vmid: vm.vmid,
      node: vm.node,
      type: 'qemu',
      status: st.status,
      name: vm.config.name,
      uptime: st.uptime,
      template: vm.config.template === undefined ? 0 : Number(vm.config.template),
      cpu: 0,
      maxcpu: st.cpus,
      mem: 0,
      maxmem: st.maxmem,
      disk: 0,
      maxdisk: 0,
      netin: 0,
      netout: 0,
      diskread: 0,
      diskwrite: 0,
      ...(vm.config.tags === undefined ? {} : { tags: vm.config.tags }),
      ...(vm.config.lock === undefined ? {} : { lock: vm.config.lock }),
      ...(vm.pool === undefined ? {} : { pool: vm.pool }),
    };
  }

  /** agent/network-get-interfaces, with Proxmox's three 500s. */
  interfaces(vm: Vm): unknown {
    if (!agentEnabled(vm.config)) throw failure('No QEMU guest agent configured');
    if (!vm.running) throw failure(`VM ${vm.vmid} is not running`);
    if (vm.address === undefined) throw failure('QEMU guest agent is not running');
    const mac = `BC:24:11:${[vm.vmid >> 16, vm.vmid >> 8, vm.vmid].map((b) => (b & 255).toString(16).padStart(2, '0').toUpperCase()).join(':')}`;
    return {
      result: [
        {
          name: 'lo',
          'hardware-address': '00:00:00:00:00:00',
          'ip-addresses': [{ 'ip-address': '127.0.0.1', 'ip-address-type': 'ipv4', prefix: 8 }],
        },
        {
          name: 'eth0',
          'hardware-address': mac.toLowerCase(),
          'ip-addresses': [{ 'ip-address': vm.address, 'ip-address-type': 'ipv4', prefix: 24 }],
          statistics: { 'rx-bytes': 0, 'tx-bytes': 0, 'rx-packets': 0, 'tx-packets': 0 },
        },
      ],
    };
  }
}
