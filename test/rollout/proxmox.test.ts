/**
 * The rollout with kind proxmox against the PVE emulator over real HTTPS (the client
 * pins the emulator's certificate), state-only VMs whose guest agents report loopback
 * addresses, and real TCP/HTTP listeners there as their health: a rollout of two VMs, a
 * health failure on the first (put back, the second untouched), a concurrent config edit
 * caught by the digest, a rollback, choosing VMs by VMID, tag and pool, and bad input.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pve } from '../emulator/pve-helpers.js';
import { httpListener, tcpListeners } from './fleet.js';
import { cdOf, configOf, pveFleet, runPveRollout, type PveFleet } from './pve-fleet.js';
import { root } from '../proxmox/helpers.js';

let f: PveFleet | undefined;
const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
  await f?.stop();
  f = undefined;
});

const TWO = [
  { vmid: 101, name: 'web1', ip: '127.0.0.51', tags: ['web'], pool: 'lab' },
  { vmid: 102, name: 'web2', ip: '127.0.0.52', tags: ['web', 'canary'] },
];

const tasks = (type: string) => f?.s.emulator.stats.tasks[type] ?? 0;
const pidOf = async (vmid: number) =>
  (
    (await pve(f?.s as NonNullable<typeof f>['s'], 'GET', `/nodes/pve/qemu/${vmid}/status/current`))
      .json?.data as { pid?: number }
  ).pid;

describe('rollout, kind proxmox', () => {
  it('moves two VMs one after the other behind tcp health, resetting each, and rolls back', async () => {
    f = await pveFleet(TWO);
    const { s, iso1, iso2 } = f;
    const health = await tcpListeners(['127.0.0.51', '127.0.0.52']);
    cleanup.push(() => {
      health.close();
    });
    const r = await runPveRollout(s, { iso: iso2, 'health-check': `tcp:${health.port}` });
    expect(r.error).toBeUndefined();
    expect(await cdOf(s, 101)).toBe(iso2);
    expect(await cdOf(s, 102)).toBe(iso2);
    expect(tasks('qmreset:101')).toBe(1);
    expect(tasks('qmreset:102')).toBe(1);
    expect(r.outputs).toMatchObject({
      'servers-updated': 'web1 web2',
      'servers-restarted': 'web1 web2',
      'previous-drive': iso1,
      'failed-server': '',
    });
    const order = r.lines.filter((l) => /\[\d\/2\]|healthy/.test(l)).map((l) => l.trim());
    expect(order[0]).toMatch(/^\[1\/2\] web1:/);
    expect(order[1]).toMatch(/^web1: running and healthy/);
    expect(order[2]).toMatch(/^\[2\/2\] web2:/);
    const rows = Object.fromEntries(r.summary);
    expect(rows.ISO).toMatch(/^diskless-[0-9a-f]{8}\.iso \(release unknown, diskless-/);
    expect(rows['Server web1']).toMatch(/^runs .*diskless-[0-9a-f]{8}\.iso/);
    // The token's secret appears nowhere.
    expect(JSON.stringify(r)).not.toContain(root.secret);

    // Rollback: a rollout to the previous ISO.
    const back = await runPveRollout(s, {
      iso: r.outputs['previous-drive'],
      'health-check': `tcp:${health.port}`,
    });
    expect(back.error).toBeUndefined();
    expect(await cdOf(s, 101)).toBe(iso1);
    expect(await cdOf(s, 102)).toBe(iso1);
    expect(tasks('qmreset:101')).toBe(2);
    expect(back.outputs['previous-drive']).toBe(iso2);
  });

  it('stops at a VM whose health check fails: it goes back to its old ISO and is reset, the next is never touched', async () => {
    f = await pveFleet(TWO);
    const { s, iso1, iso2 } = f;
    const fleet = f;
    // web1's service fails while its CD names the new ISO (the new image is broken there)
    const health = await httpListener('127.0.0.51', async () =>
      (await cdOf(fleet.s, 101)) === iso2 ? 503 : 200,
    );
    cleanup.push(() => {
      health.close();
    });
    const web2Before = await configOf(s, 102);
    const r = await runPveRollout(s, {
      iso: iso2,
      'health-check': `http://{ip}:${health.port}/health`,
      'health-timeout': '3',
    });
    expect(r.error?.message).toMatch(
      /^Rollout stopped: server web1: health check http:\/\/\{ip\}:\d+\/health failed within 3 s \(http:\/\/127\.0\.0\.51:\d+\/health: HTTP 503\)\. web1 is back on diskless-[0-9a-f]{8}\.iso .* and was restarted, healthy again\. Not touched: web2\. No other server was changed\.$/,
    );
    expect(await cdOf(s, 101)).toBe(iso1);
    expect(tasks('qmreset:101')).toBe(2); // onto the new ISO and back
    expect(tasks('qmreset:102')).toBe(0);
    expect(await configOf(s, 102)).toEqual(web2Before); // same digest: not written at all
    expect(r.outputs).toMatchObject({
      'failed-server': 'web1',
      'servers-updated': '',
      'servers-restarted': 'web1',
    });
  });

  it('catches a concurrent config edit by its digest: that VM is left as the other user made it', async () => {
    f = await pveFleet(TWO);
    const { s, iso1, iso2 } = f;
    const emulator = s.emulator;
    // While web1 is being checked, someone else edits web2's config.
    const health = await httpListener('127.0.0.51', () => {
      emulator.editConfig(102, { description: 'edited by another admin' });
      return Promise.resolve(200);
    });
    cleanup.push(() => {
      health.close();
    });
    const r = await runPveRollout(s, {
      iso: iso2,
      'health-check': `http://{ip}:${health.port}/`,
      servers: 'web1\nweb2',
    });
    expect(r.error?.message).toMatch(
      /^Rollout stopped: server web2: VM 102: its config changed while the rollout read it \(digest [0-9a-f]{8}… is stale\): .*checksum mismatch \(file change by other user\?\).*\. web2 was not changed \(still on diskless-[0-9a-f]{8}\.iso .*\)\. Already on the new ISO: web1\.$/,
    );
    expect(await cdOf(s, 101)).toBe(iso2);
    const web2 = await configOf(s, 102);
    expect(String(web2.ide2).split(',')[0]).toBe(iso1);
    expect(web2.description).toBe('edited by another admin');
    expect(tasks('qmreset:102')).toBe(0);
    expect(r.outputs['failed-server']).toBe('web2');
  });

  it('chooses VMs by VMID, tag and pool, restarts by reboot (a new QEMU process), and repoints a stopped VM without starting it', async () => {
    f = await pveFleet([
      ...TWO,
      { vmid: 103, name: 'db1', ip: '127.0.0.53', tags: ['db'] },
      { vmid: 104, name: 'spare', ip: '127.0.0.54', stopped: true },
    ]);
    const { s, iso1, iso2 } = f;
    const dry = await runPveRollout(s, {
      iso: iso2,
      servers: 'pool:lab\ntag:canary\n104',
      'health-check': 'none',
      'dry-run': 'true',
    });
    expect(dry.error).toBeUndefined();
    expect(dry.lines.filter((l) => /^\s+(web|db|spare)/.test(l)).map((l) => l.trim())).toEqual([
      expect.stringMatching(/^spare: ide2: .* -> diskless-[0-9a-f]{8}\.iso; stopped: takes it/),
      expect.stringMatching(/^web1: ide2: .*; reset$/),
      expect.stringMatching(/^web2: ide2: .*; reset$/),
    ]);
    expect(await cdOf(s, 101)).toBe(iso1);
    const pid101 = await pidOf(101);
    const r = await runPveRollout(s, {
      iso: iso2.replace(/^local:iso\//, ''),
      storage: 'local',
      servers: 'pool:lab\n104',
      'restart-method': 'reboot',
      'health-check': 'none',
    });
    expect(r.error).toBeUndefined();
    expect(r.outputs).toMatchObject({
      'servers-updated': 'spare web1',
      'servers-restarted': 'web1',
    });
    expect(tasks('qmreboot:101')).toBe(1);
    expect(await pidOf(101)).not.toBe(pid101);
    expect(await pidOf(104)).toBeUndefined(); // still stopped
    expect(await cdOf(s, 104)).toBe(iso2);
    expect(await cdOf(s, 102)).toBe(iso1);
    expect(await cdOf(s, 103)).toBe(iso1);
  });

  it('refuses bad inputs and an unknown ISO with one line, touching nothing', async () => {
    f = await pveFleet(TWO);
    const { s, iso2 } = f;
    const cases: [Record<string, string>, RegExp][] = [
      [
        { iso: iso2, 'token-id': '' },
        /^Input "token-id" is required with kind proxmox: expected an API token ID/,
      ],
      [{ iso: '' }, /^Input "iso" is required with kind proxmox/],
      [
        { iso: 'local:iso/x.qcow2' },
        /^Input "iso": got "local:iso\/x\.qcow2"; expected the ISO volume/,
      ],
      [{ iso: 'x.iso' }, /^Input "storage" is required with kind proxmox/],
      [
        { iso: iso2, storage: 'cephfs' },
        /^Input "storage": got "cephfs"; expected the storage of iso .* \(local\)$/,
      ],
      [
        { iso: iso2, device: 'ide:0:1' },
        /^Input "device": got "ide:0:1"; expected a Proxmox CD drive such as ide2/,
      ],
      [
        { iso: iso2, 'api-key': 'k' },
        /^Input "api-key": got a value with kind proxmox; expected it only with kind elasticstack$/,
      ],
      [
        { iso: iso2, 'api-url': 'http://127.0.0.1:8006' },
        /^Input "api-url": got "http:\/\/127\.0\.0\.1:8006\/"; expected the https:\/\/ URL/,
      ],
      [
        { iso: iso2, 'restart-method': 'stop' },
        /^Input "restart-method": got "stop"; expected one of reset \| reboot$/,
      ],
      [
        { iso: iso2, servers: 'pool:nope' },
        /^Input "servers": got "pool:nope"; expected a server name, id, tag:<tag> or pool:<pool>, and no server of the account matches it \(servers: web1, web2\)$/,
      ],
      [
        { iso: 'local:iso/diskless-00000000.iso' },
        /^ISO local:iso\/diskless-00000000\.iso: there is no such file on storage local of node pve at https:\/\/127\.0\.0\.1:\d+\/api2\/json \(ISOs there: diskless-[0-9a-f]{8}\.iso, diskless-[0-9a-f]{8}\.iso\)$/,
      ],
      [{ iso: iso2, 'token-secret': 'wrong' }, /401/],
      [{ iso: iso2, 'tls-fingerprint': '00'.repeat(32) }, /certificate|fingerprint/i],
    ];
    for (const [inputs, message] of cases) {
      const r = await runPveRollout(s, inputs);
      expect(r.error?.message, JSON.stringify(inputs)).toMatch(message);
      expect(r.error?.message).not.toMatch(/\n/);
      expect(r.error?.message).not.toContain(root.secret);
    }
    expect(tasks('qmreset') + (s.emulator.stats.tasks.qmconfig ?? 0)).toBe(0);
    expect(await cdOf(s, 101)).not.toBe(iso2);
  });
});
