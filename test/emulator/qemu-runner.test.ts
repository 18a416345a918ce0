/**
 * The QEMU runner's command line per server (the boots themselves are in the e2e test):
 * drives at their devices with CDs read-only, the boot order, the NIC model and MAC on the
 * server's tap, the console appended, the monitor for the power button.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineArgs, pressPowerButton } from '../../src/emulator/qemu-runner.js';
import type { BootSpec } from '../../src/emulator/server-runner.js';

const spec: BootSpec = {
  server: 'c0ffee00-0000-4000-8000-000000000001',
  name: 'web1',
  mem: 1024,
  smp: 1,
  drives: [
    { device: 'ide:0:1', file: '/data/drives/cd.img', media: 'cdrom' },
    { device: 'block:0', file: '/data/drives/disk.img', media: 'disk' },
  ],
  boot: ['ide:0:1'],
  nicModel: 'virtio',
  ip: '10.0.2.16',
};
const where = { console: '/w/consoles/c.log', monitor: '/w/m.sock', tap: 'dlt3' };

function values(args: string[], option: string): string[] {
  return args.flatMap((a, i) => (args[i - 1] === option ? [a] : []));
}

describe('machineArgs', () => {
  it('attaches the CD read-only at its IDE place, the disk as virtio, boots the CD', () => {
    const args = machineArgs(spec, { ...where, firmware: 'bios' });
    expect(values(args, '-drive')).toEqual([
      'file=/data/drives/cd.img,format=raw,media=cdrom,readonly=on,if=ide,bus=0,unit=1',
      'file=/data/drives/disk.img,format=raw,media=disk,if=virtio,index=0',
    ]);
    expect(values(args, '-boot')).toEqual(['order=d']);
    expect(values(args, '-m')).toEqual(['1024']);
    expect(values(args, '-accel')).toEqual(['tcg']);
    expect(args).not.toContain('-no-reboot'); // a guest reboot keeps the server running
  });

  it("puts the chosen NIC, with the server's MAC (its static lease), on the server's tap", () => {
    const args = machineArgs({ ...spec, nicModel: 'e1000' }, { ...where, firmware: 'bios' });
    expect(values(args, '-netdev')).toEqual(['tap,id=n0,ifname=dlt3,script=no,downscript=no']);
    expect(values(args, '-device')).toEqual(['e1000,netdev=n0,mac=52:54:00:c0:ff:ee,romfile=']);
  });

  it('appends the console to its file and opens a monitor for the power button', () => {
    const args = machineArgs(spec, { ...where, firmware: 'bios' });
    expect(values(args, '-chardev')).toEqual(['file,id=console,path=/w/consoles/c.log,append=on']);
    expect(values(args, '-serial')).toEqual(['chardev:console']);
    expect(values(args, '-monitor')).toEqual(['unix:/w/m.sock,server=on,wait=off']);
  });

  it('uses OVMF for UEFI, with the server own variables', () => {
    const args = machineArgs(spec, { ...where, firmware: 'uefi', ovmfVars: '/w/vars.fd' });
    expect(values(args, '-drive')).toContain('if=pflash,format=raw,unit=1,file=/w/vars.fd');
  });

  it('refuses devices it cannot attach, naming them', () => {
    expect(() =>
      machineArgs(
        { ...spec, drives: [{ device: 'scsi:0:1', file: '/d', media: 'disk' }] },
        { ...where, firmware: 'bios' },
      ),
    ).toThrow(/device scsi:0:1: the QEMU runner attaches ide:B:U and block:N drives only/);
  });
});

// A stand-in for QEMU's monitor (the real one is driven by the e2e test's shutdown): it
// greets first, as QEMU's does, and closes the connection once the client is done.
describe('pressPowerButton', () => {
  it('sends system_powerdown and resolves when the monitor closes, after its greeting', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'monitor-'));
    const socket = path.join(dir, 'm.sock');
    let received = '';
    const server = createServer((c) => {
      c.write("QEMU 7.2.0 monitor - type 'help' for more information\n(qemu) ".repeat(2000));
      c.on('data', (b: Buffer) => (received += b.toString()));
      c.on('end', () => c.end());
    });
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      await pressPowerButton(socket);
      expect(received).toBe('system_powerdown\n');
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the monitor it cannot reach', async () => {
    await expect(pressPowerButton('/nonexistent/m.sock')).rejects.toThrow(
      /QEMU monitor \/nonexistent\/m\.sock: connect ENOENT/,
    );
  });
});
