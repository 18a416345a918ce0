/**
 * The Proxmox VE emulator with a server runner, at unit level (a stand-in runner that
 * records what it is asked to boot; the QEMU runner boots for real in test/e2e): a start
 * boots the VM's CD-ROMs as its config says, the boot CD first; a reset boots the config as
 * it is now (the CD swapped by the config call); a stop pulls the plug; a guest that powers
 * off by itself leaves the VM stopped; a VM without an address cannot boot.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BootSpec, RunningServer, ServerRunner } from '../../src/emulator/server-runner.js';
import { machineId } from '../../src/emulator/pve/vms.js';
import { pve, startPve, waitTask, type StartedPve } from './pve-helpers.js';

interface Machine {
  spec: BootSpec;
  stopped: boolean;
  powerOff(): void;
}

function standInRunner(): ServerRunner & { machines: Machine[]; closed: boolean } {
  const machines: Machine[] = [];
  const runner = {
    machines,
    closed: false,
    network: '10.9.9',
    async start(spec: BootSpec): Promise<RunningServer> {
      let powerOff = (): void => undefined;
      const exited = new Promise<void>((resolve) => (powerOff = resolve));
      const m: Machine = { spec, stopped: false, powerOff };
      machines.push(m);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return {
        ip: spec.ip ?? '',
        exited,
        stop() {
          m.stopped = true;
          powerOff();
          return Promise.resolve();
        },
        shutdown() {
          m.stopped = true;
          powerOff();
          return Promise.resolve();
        },
      };
    },
    close() {
      runner.closed = true;
      return Promise.resolve();
    },
  };
  return runner;
}

let s: StartedPve | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

async function isoFile(started: StartedPve, name: string): Promise<string> {
  const dir = path.join(started.dataDir, 'storage', 'local', 'template', 'iso');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, name), `${name}\n`);
  return path.join(dir, name);
}

async function task(started: StartedPve, method: 'POST' | 'PUT', api: string, form = {}) {
  const r = await pve(started, method, api, { form });
  return waitTask(started, String(r.json?.data));
}

async function status(started: StartedPve, vmid: number): Promise<string> {
  const r = await pve(started, 'GET', `/nodes/pve/qemu/${String(vmid)}/status/current`);
  return (r.json?.data as { status: string }).status;
}

describe('Proxmox VMs with a server runner', () => {
  it('boots the CD-ROMs of the config, the boot CD first, and a reset boots the swapped CD', async () => {
    const runner = standInRunner();
    s = await startPve({
      runner,
      vms: [
        {
          vmid: 201,
          name: 'web-1',
          config: {
            ide0: 'none,media=cdrom',
            ide2: 'none,media=cdrom',
            boot: 'order=ide2',
            memory: 768,
            cores: 2,
          },
          address: '10.9.9.31',
        },
      ],
    });
    const a = await isoFile(s, 'a.iso');
    const b = await isoFile(s, 'b.iso');
    const tools = await isoFile(s, 'tools.iso');
    await task(s, 'POST', '/nodes/pve/qemu/201/config', {
      ide2: 'local:iso/a.iso,media=cdrom',
      ide0: 'local:iso/tools.iso,media=cdrom',
    });
    expect((await task(s, 'POST', '/nodes/pve/qemu/201/status/start')).exitstatus).toBe('OK');
    expect(runner.machines).toHaveLength(1);
    const first = runner.machines[0]?.spec;
    expect(first).toMatchObject({
      server: machineId(201),
      name: 'web-1',
      mem: 768,
      smp: 2,
      ip: '10.9.9.31',
    });
    // ide2 is named first by boot: order=, so it is what the machine boots.
    expect(first?.drives.map((d) => d.file)).toEqual([a, tools]);
    expect(first?.boot[0]).toBe(first?.drives[0]?.device);

    await task(s, 'POST', '/nodes/pve/qemu/201/config', { ide2: 'local:iso/b.iso,media=cdrom' });
    expect(runner.machines).toHaveLength(1); // a config change alone boots nothing
    const pid = (
      (await pve(s, 'GET', '/nodes/pve/qemu/201/status/current')).json?.data as { pid: number }
    ).pid;
    expect((await task(s, 'POST', '/nodes/pve/qemu/201/status/reset')).exitstatus).toBe('OK');
    expect(runner.machines.map((m) => m.stopped)).toEqual([true, false]);
    expect(runner.machines[1]?.spec.drives[0]?.file).toBe(b);
    // Proxmox's reset keeps the QEMU process: the API's pid stays.
    const after = (await pve(s, 'GET', '/nodes/pve/qemu/201/status/current')).json?.data as {
      pid: number;
      status: string;
    };
    expect(after).toMatchObject({ pid, status: 'running' });

    expect((await task(s, 'POST', '/nodes/pve/qemu/201/status/stop')).exitstatus).toBe('OK');
    expect(runner.machines[1]?.stopped).toBe(true);
    expect(await status(s, 201)).toBe('stopped');
  });

  it('a guest that powers itself off leaves its VM stopped; close stops the runner', async () => {
    const runner = standInRunner();
    s = await startPve({
      runner,
      vms: [
        { vmid: 202, name: 'web-2', config: { ide2: 'none,media=cdrom' }, address: '10.9.9.32' },
      ],
    });
    await isoFile(s, 'a.iso');
    await task(s, 'POST', '/nodes/pve/qemu/202/config', { ide2: 'local:iso/a.iso,media=cdrom' });
    await task(s, 'POST', '/nodes/pve/qemu/202/status/start');
    expect(await status(s, 202)).toBe('running');
    runner.machines[0]?.powerOff();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await status(s, 202)).toBe('stopped');
    await s.stop();
    s = undefined;
    expect(runner.closed).toBe(true);
  });

  it('a VM without an address fails its start task and stays stopped', async () => {
    const runner = standInRunner();
    s = await startPve({
      runner,
      vms: [{ vmid: 203, name: 'web-3', config: { ide2: 'none,media=cdrom' } }],
    });
    const started = await task(s, 'POST', '/nodes/pve/qemu/203/status/start');
    expect(started.exitstatus).toMatch(/VM 203: .*address/);
    expect(runner.machines).toHaveLength(0);
    expect(await status(s, 203)).toBe('stopped');
  });
});
