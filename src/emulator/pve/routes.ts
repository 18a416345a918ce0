/**
 * The API calls the emulator answers, by method and path (below /api2/json): each one a
 * handler over the request's context. An unknown path is 501 `Method 'GET /x' not
 * implemented`, as in Proxmox.
 */
import { need, type Caller } from './auth.js';
import { booleanParam, integerParam } from './params.js';
import { failure, paramError, PveError } from './pve-error.js';
import type { Storages } from './storage.js';
import type { Tasks } from './tasks.js';
import { configPrivilege, type Vm, type Vms } from './vms.js';

export interface Context {
  caller: Caller;
  params: Record<string, string>;
  /** Path segments after /api2/json, URI-decoded. */
  parts: string[];
  nodes: string[];
  storages: Storages;
  vms: Vms;
  tasks: Tasks;
}

type Handler = (c: Context) => unknown;

function node(c: Context): string {
  const n = c.parts[1] ?? '';
  if (!c.nodes.includes(n)) throw failure(`no such cluster node '${n}'`);
  return n;
}

function vmOf(c: Context): Vm {
  const vmid = integerParam('vmid', c.parts[3] ?? '', 100, 999_999_999);
  return c.vms.get(node(c), vmid);
}

/** Waits up to `seconds` for a task: null when it ended OK, its error as a 500, else the UPID. */
async function settle(c: Context, n: string, upid: string, seconds: number): Promise<unknown> {
  const task = c.tasks.get(n, upid);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    task.done,
    new Promise((resolve) => (timer = setTimeout(resolve, seconds * 1000))),
  ]);
  clearTimeout(timer);
  if (task.status !== 'stopped') return upid;
  if (task.exitstatus !== 'OK') throw failure(task.exitstatus ?? 'unexpected status');
  return null;
}

const storageList: Handler = (c) => {
  node(c);
  const wanted = c.params.content;
  return c.storages
    .all()
    .filter((s) => wanted === undefined || s.content.includes(wanted))
    .filter((s) => {
      try {
        need(c.caller, `/storage/${s.id}`, 'Datastore.Audit', 'Datastore.AllocateSpace');
        return true;
      } catch {
        return false;
      }
    })
    .map((s) => ({
      storage: s.id,
      type: s.type,
      content: s.content.join(','),
      shared: s.shared ? 1 : 0,
      active: 1,
      enabled: 1,
      total: 100 * 2 ** 30,
      used: 0,
      avail: 100 * 2 ** 30,
    }));
};

const contentList: Handler = async (c) => {
  const n = node(c);
  const id = c.parts[3] ?? '';
  c.storages.get(id);
  need(c.caller, `/storage/${id}`, 'Datastore.Audit', 'Datastore.AllocateSpace');
  const content = c.params.content;
  if (
    content !== undefined &&
    !['iso', 'vztmpl', 'images', 'rootdir', 'backup', 'snippets', 'import'].includes(content)
  ) {
    throw paramError({
      content: `value '${content}' does not have a value in the enumeration 'images, rootdir, vztmpl, iso, backup, snippets, import'`,
    });
  }
  if (c.params.vmid !== undefined || (content !== undefined && content !== 'iso')) return [];
  return (await c.storages.listIso(id, n)).map((f) => ({
    volid: f.volid,
    format: 'iso',
    size: f.size,
    ctime: f.ctime,
    content: 'iso',
  }));
};

/** The `{volume}` of …/content/{volume}: everything after `content/`, joined. */
function volumeOf(c: Context): { volid: string; file: string } {
  const n = node(c);
  const id = c.parts[3] ?? '';
  c.storages.get(id);
  const raw = c.parts.slice(5).join('/');
  const v = c.storages.volumePath(raw, n, id);
  if (!v) throw failure(`unable to parse volume ID '${raw}'`);
  return v;
}

const contentInfo: Handler = async (c) => {
  const v = volumeOf(c);
  need(c.caller, `/storage/${c.parts[3] ?? ''}`, 'Datastore.Audit', 'Datastore.AllocateSpace');
  const size = await c.storages.volumeSize(v.volid, node(c));
  return { path: v.file, size, used: size, format: 'iso' };
};

const contentDelete: Handler = async (c) => {
  const n = node(c);
  const v = volumeOf(c);
  need(c.caller, `/storage/${c.parts[3] ?? ''}`, 'Datastore.Allocate');
  const delay =
    c.params.delay === undefined ? undefined : integerParam('delay', c.params.delay, 1, 30);
  const upid = c.tasks.start(n, 'imgdel', c.parts[3] ?? '', c.caller.id, async (log) => {
    if (!(await c.storages.remove(v.volid, n))) log(`WARN: disk image '${v.volid}' does not exist`);
  });
  return delay === undefined ? upid : settle(c, n, upid, delay);
};

const taskStatus: Handler = (c) => {
  const task = c.tasks.get(node(c), c.parts[3] ?? '');
  if (task.user !== c.caller.id) need(c.caller, `/nodes/${task.node}`, 'Sys.Audit');
  return c.tasks.status(task);
};

const taskLog: Handler = (c) => {
  const task = c.tasks.get(node(c), c.parts[3] ?? '');
  if (task.user !== c.caller.id) need(c.caller, `/nodes/${task.node}`, 'Sys.Audit');
  const start = c.params.start === undefined ? 0 : integerParam('start', c.params.start, 0);
  const limit = c.params.limit === undefined ? 50 : integerParam('limit', c.params.limit, 0);
  const { lines, total } = c.tasks.logLines(task, start, limit);
  return new WithSiblings(lines, { total });
};

/** A `data` with sibling keys in the envelope (`total` of the task log). */
export class WithSiblings {
  constructor(
    readonly data: unknown,
    readonly siblings: Record<string, unknown>,
  ) {}
}

const clusterResources: Handler = (c) => {
  const type = c.params.type;
  if (type !== undefined && !['vm', 'storage', 'node', 'sdn'].includes(type)) {
    throw paramError({
      type: `value '${type}' does not have a value in the enumeration 'vm, storage, node, sdn'`,
    });
  }
  const vms = c.vms
    .all()
    .filter((vm) => {
      try {
        need(c.caller, `/vms/${vm.vmid}`, 'VM.Audit');
        return true;
      } catch {
        return false;
      }
    })
    .map((vm) => c.vms.resource(vm));
  if (type === 'vm') return vms;
  const nodes = c.nodes.map((n) => ({ id: `node/${n}`, node: n, type: 'node', status: 'online' }));
  const storages = c.storages.all().flatMap((s) =>
    c.nodes.map((n) => ({
      id: `storage/${n}/${s.id}`,
      storage: s.id,
      node: n,
      type: 'storage',
      status: 'available',
      shared: s.shared ? 1 : 0,
    })),
  );
  if (type === 'node') return nodes;
  if (type === 'storage') return storages;
  if (type === 'sdn') return [];
  return [...vms, ...nodes, ...storages];
};

const vmConfig: Handler = (c) => {
  const vm = vmOf(c);
  need(c.caller, `/vms/${vm.vmid}`, 'VM.Audit');
  return { ...vm.config, digest: c.vms.digest(vm) };
};

const vmPending: Handler = (c) => {
  const vm = vmOf(c);
  need(c.caller, `/vms/${vm.vmid}`, 'VM.Audit');
  return Object.entries(vm.config).map(([key, value]) => ({ key, value }));
};

function configPrivileges(
  c: Context,
  vm: Vm,
  update: { set: Record<string, string>; remove: string[] },
): void {
  for (const [key, value] of Object.entries(update.set)) {
    need(c.caller, `/vms/${vm.vmid}`, configPrivilege(key, value));
  }
  for (const key of update.remove) {
    need(
      c.caller,
      `/vms/${vm.vmid}`,
      configPrivilege(key, vm.config[key] === undefined ? undefined : String(vm.config[key])),
    );
  }
}

const vmConfigSet =
  (post: boolean): Handler =>
  async (c) => {
    const vm = vmOf(c);
    const update = c.vms.prepareUpdate(vm, c.params, post);
    if (!post) {
      configPrivileges(c, vm, update);
      await c.vms.applyUpdate(vm, update);
      return null;
    }
    const upid = c.tasks.start(vm.node, 'qmconfig', String(vm.vmid), c.caller.id, async () => {
      configPrivileges(c, vm, update);
      await c.vms.applyUpdate(vm, update);
    });
    const delay = c.params.background_delay;
    return delay === undefined ? upid : settle(c, vm.node, upid, Number(delay));
  };

const vmStatus: Handler = (c) => {
  const vm = vmOf(c);
  need(c.caller, `/vms/${vm.vmid}`, 'VM.Audit');
  return c.vms.status(vm);
};

const POWER: Record<
  string,
  {
    task: string;
    sync?: (vms: Vms, vm: Vm) => void;
    work: (vms: Vms, vm: Vm) => Promise<void> | void;
  }
> = {
  start: { task: 'qmstart', work: (vms, vm) => vms.start(vm) },
  stop: { task: 'qmstop', work: (vms, vm) => vms.stop(vm) },
  shutdown: { task: 'qmshutdown', work: (vms, vm) => vms.stop(vm) },
  reset: {
    task: 'qmreset',
    sync: (vms, vm) => {
      vms.assertRunning(vm);
    },
    work: (vms, vm) => vms.reset(vm),
  },
  reboot: {
    task: 'qmreboot',
    sync: (vms, vm) => {
      vms.assertRunning(vm);
    },
    work: (vms, vm) => vms.reboot(vm),
  },
};

const vmPower: Handler = (c) => {
  const vm = vmOf(c);
  const action = POWER[c.parts[5] ?? ''];
  if (!action)
    throw new PveError(
      501,
      `Method 'POST /nodes/${vm.node}/qemu/${vm.vmid}/status/${c.parts[5] ?? ''}' not implemented`,
    );
  need(c.caller, `/vms/${vm.vmid}`, 'VM.PowerMgmt');
  booleanParam('forceStop', c.params.forceStop);
  if (c.parts[5] !== 'stop') c.vms.checkLock(vm);
  action.sync?.(c.vms, vm);
  return c.tasks.start(vm.node, action.task, String(vm.vmid), c.caller.id, () =>
    action.work(c.vms, vm),
  );
};

const vmInterfaces: Handler = (c) => {
  const vm = vmOf(c);
  need(
    c.caller,
    `/vms/${vm.vmid}`,
    'VM.GuestAgent.Audit',
    'VM.GuestAgent.Unrestricted',
    'VM.Monitor',
  );
  return c.vms.interfaces(vm);
};

const nodesList: Handler = (c) => c.nodes.map((n) => ({ node: n, status: 'online', type: 'node' }));

const version: Handler = () => ({ version: '8.4.0', release: '8.4', repoid: 'emulator' });

/** Method and path pattern (`*` one segment, `**` the rest) to handler. */
const ROUTES: [string, string, Handler][] = [
  ['GET', 'version', version],
  ['GET', 'nodes', nodesList],
  ['GET', 'cluster/resources', clusterResources],
  ['GET', 'nodes/*/storage', storageList],
  ['GET', 'nodes/*/storage/*/content', contentList],
  ['GET', 'nodes/*/storage/*/content/**', contentInfo],
  ['DELETE', 'nodes/*/storage/*/content/**', contentDelete],
  ['GET', 'nodes/*/tasks/*/status', taskStatus],
  ['GET', 'nodes/*/tasks/*/log', taskLog],
  ['GET', 'nodes/*/qemu/*/config', vmConfig],
  ['PUT', 'nodes/*/qemu/*/config', vmConfigSet(false)],
  ['POST', 'nodes/*/qemu/*/config', vmConfigSet(true)],
  ['GET', 'nodes/*/qemu/*/pending', vmPending],
  ['GET', 'nodes/*/qemu/*/status/current', vmStatus],
  ['POST', 'nodes/*/qemu/*/status/*', vmPower],
  ['GET', 'nodes/*/qemu/*/agent/network-get-interfaces', vmInterfaces],
];

function matches(pattern: string, parts: string[]): boolean {
  const p = pattern.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '**') return parts.length > i;
    if (parts[i] === undefined || (p[i] !== '*' && p[i] !== parts[i])) return false;
  }
  return parts.length === p.length;
}

/** The handler of a call, or 501 as Proxmox answers an unknown one. */
export function route(method: string, parts: string[]): Handler {
  const hit = ROUTES.find(([m, p]) => m === method && matches(p, parts));
  if (!hit) throw new PveError(501, `Method '${method} /${parts.join('/')}' not implemented`);
  return hit[2];
}

/** Whether the path is the upload call's: /nodes/{node}/storage/{storage}/upload. */
export function isUpload(parts: string[]): boolean {
  return matches('nodes/*/storage/*/upload', parts);
}
