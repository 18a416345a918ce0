/**
 * The rollout against the local cloud over real HTTP, state-only servers with loopback
 * addresses and real TCP/HTTP listeners as their health: every path of the rollout, what
 * a user sees of it (servers' drives and claims, resets, outputs, summary, error line),
 * and the ledger entry that retention reads.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RECORDED_QUIRKS } from '../../src/emulator/index.js';
import { releasesInUse } from '../../src/releases/in-use.js';
import type { LedgerEntry } from '../../src/releases/ledger.js';
import { call, createDrive, start, type Started } from '../emulator/helpers.js';
import {
  bootDrive,
  bootServer,
  claimedBy,
  httpListener,
  R1,
  R2,
  runRollout,
  serverInfo,
  tcpListeners,
} from './fleet.js';

let s: Started | undefined;
const cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
  await s?.stop();
  s = undefined;
});

/** The cloud with the old drive D1 (R1), the new D2 (R2) and servers booting D1. */
async function fleet(
  names: { name: string; ip: string; tags?: string; stopped?: boolean }[],
  quirks = false,
) {
  s = await start(quirks ? { quirks: RECORDED_QUIRKS } : {});
  const e = s.emulator;
  const d1 = await bootDrive(e, 'aaaaaaaa', R1);
  const d2 = await bootDrive(e, 'bbbbbbbb', R2);
  const ids: Record<string, string> = {};
  for (const n of names) ids[n.name] = await bootServer(e, { ...n, cd: d1 });
  return { e, d1, d2, ids };
}

const resets = () => s?.emulator.stats.endpoints['servers/reset'] ?? 0;
const sets = () => s?.emulator.stats.endpoints['servers/set'] ?? 0;

describe('rollout, rolling', () => {
  it('moves every server of the family, one at a time behind tcp health, and says who runs what', async () => {
    const { e, d1, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11' },
      { name: 'web2', ip: '127.0.0.12' },
    ]);
    const health = await tcpListeners(['127.0.0.11', '127.0.0.12']);
    cleanup.push(() => {
      health.close();
    });
    const r = await runRollout(e, {
      drive: d2,
      'health-check': `tcp:${health.port}`,
      'ledger-name': 'zone1',
    });
    expect(r.error).toBeUndefined();
    for (const id of Object.values(ids)) expect((await serverInfo(e, id))['ide:0:1']).toBe(d2);
    expect((await claimedBy(e, d2)).sort()).toEqual(Object.values(ids).sort());
    expect(await claimedBy(e, d1)).toEqual([]);
    expect(resets()).toBe(2);
    expect(r.outputs).toMatchObject({
      'servers-updated': 'web1 web2',
      'servers-restarted': 'web1 web2',
      'previous-drive': d1,
      'failed-server': '',
      release: R2,
    });
    // one batch after the other: web1 healthy before web2 was reset
    const order = r.lines.filter((l) => /\[\d\/2\]|healthy/.test(l)).map((l) => l.trim());
    expect(order[0]).toMatch(/^\[1\/2\] web1:/);
    expect(order[1]).toMatch(/^web1: running and healthy/);
    expect(order[2]).toMatch(/^\[2\/2\] web2:/);
    const rows = Object.fromEntries(r.summary);
    expect(rows['Server web1']).toMatch(new RegExp(`^runs ${R2} \\(drive boot-cd-bbbbbbbb`));
    expect(rows['Server web2']).toMatch(new RegExp(`^runs ${R2} `));
    const entry = JSON.parse(r.outputs.ledger) as LedgerEntry;
    expect(entry).toMatchObject({ target: 'zone1', release: R2, drive: d2 });
    expect(entry.also?.map((a) => a.release)).toEqual([R1]);
    expect(entry.also?.[0]?.why).toMatch(/^previous drive [0-9a-f]{8} \(rollback\)$/);
  });

  it('stops at a server whose health check fails: it goes back to its old drive, the next is never touched', async () => {
    const { e, d1, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11' },
      { name: 'web2', ip: '127.0.0.12' },
    ]);
    const web1 = ids.web1 ?? '';
    const web2 = ids.web2 ?? '';
    // web1's service answers only while web1 does not run the new image (it is broken there)
    const health = await httpListener('127.0.0.11', async () =>
      (await claimedBy(e, d2)).includes(web1) ? 503 : 200,
    );
    cleanup.push(() => {
      health.close();
    });
    const web2Before = await serverInfo(e, web2);
    const r = await runRollout(e, {
      drive: d2,
      'health-check': `http://{ip}:${health.port}/health`,
      'health-timeout': '3',
    });
    expect(r.error?.message).toMatch(
      /^Rollout stopped: server web1: health check http:\/\/\{ip\}:\d+\/health failed within 3 s \(http:\/\/127\.0\.0\.11:\d+\/health: HTTP 503\)\. web1 is back on boot-cd-aaaaaaaa .* and was restarted, healthy again\. Not touched: web2\. No other server was changed\.$/,
    );
    expect((await serverInfo(e, web1))['ide:0:1']).toBe(d1);
    expect(await claimedBy(e, d1)).toContain(web1);
    expect(resets()).toBe(2); // web1's reset onto D2 and back
    expect(await serverInfo(e, web2)).toEqual(web2Before); // started and drive as they were
    expect(await claimedBy(e, d2)).toEqual([]);
    expect(r.outputs).toMatchObject({
      'failed-server': 'web1',
      'servers-updated': '',
      'servers-restarted': 'web1',
    });
    expect(Object.fromEntries(r.summary).Result).toMatch(/^Rollout stopped: server web1/);
  });

  it('goes in batches of batch-size, and a failure in the second batch leaves the first on the new drive', async () => {
    const names = ['n1', 'n2', 'n3', 'n4', 'n5'].map((name, i) => ({
      name,
      ip: `127.0.0.${21 + i}`,
    }));
    const { e, d1, d2, ids } = await fleet(names);
    // n4 has no service at all
    const health = await tcpListeners(names.filter((n) => n.name !== 'n4').map((n) => n.ip));
    cleanup.push(() => {
      health.close();
    });
    const r = await runRollout(e, {
      drive: d2,
      'batch-size': '2',
      'health-check': `tcp:${health.port}`,
      'health-timeout': '2',
    });
    expect(r.lines.filter((l) => /^\s*\[/.test(l)).map((l) => l.trim().split(':')[0])).toEqual([
      '[2/5] n1, n2',
      '[4/5] n3, n4',
    ]);
    expect(r.error?.message).toMatch(
      /server n4: health check tcp:\d+ failed within 2 s .*ECONNREFUSED.*Not touched: n5\. Already on the new drive: n1, n2, n3\.$/,
    );
    expect(r.outputs['failed-server']).toBe('n4');
    const drives = Object.fromEntries(
      await Promise.all(
        Object.entries(ids).map(async ([n, id]): Promise<[string, string | undefined]> => [
          n,
          (await serverInfo(e, id))['ide:0:1'],
        ]),
      ),
    );
    expect(drives).toEqual({ n1: d2, n2: d2, n3: d2, n4: d1, n5: d1 });
  });

  it('repoints a stopped server without starting it', async () => {
    const { e, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11' },
      { name: 'spare', ip: '127.0.0.13', stopped: true },
    ]);
    const health = await tcpListeners(['127.0.0.11']);
    cleanup.push(() => {
      health.close();
    });
    const r = await runRollout(e, { drive: d2, 'health-check': `tcp:${health.port}` });
    expect(r.error).toBeUndefined();
    expect(r.outputs).toMatchObject({
      'servers-updated': 'spare web1',
      'servers-restarted': 'web1',
    });
    expect(await serverInfo(e, ids.spare ?? '')).toMatchObject({
      status: 'stopped',
      'ide:0:1': d2,
    });
    expect(Object.fromEntries(r.summary)['Server spare']).toMatch(
      new RegExp(`^stopped; boots ${R2} `),
    );
  });
});

describe('rollout, choosing servers', () => {
  it('takes tag:<tag>, names and UUIDs, and refuses an entry that matches nothing, changing nothing', async () => {
    const { e, d1, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11', tags: 'web' },
      { name: 'web2', ip: '127.0.0.12', tags: 'web canary' },
      { name: 'db1', ip: '127.0.0.13', tags: 'db' },
    ]);
    const bad = await runRollout(e, {
      drive: d2,
      servers: 'tag:web\nweb9',
      'health-check': 'none',
    });
    expect(bad.error?.message).toMatch(
      /^Input "servers": got "web9"; expected a server name, id, tag:<tag> or pool:<pool>, and no server of the account matches it \(servers: db1, web1, web2\)$/,
    );
    expect(sets()).toBe(0);
    const r = await runRollout(e, { drive: d2, servers: 'tag:canary', 'health-check': 'none' });
    expect(r.outputs['servers-updated']).toBe('web2');
    const r2 = await runRollout(e, {
      drive: d2,
      servers: `${ids.db1 ?? ''}\nweb1`,
      'health-check': 'none',
    });
    expect(r2.outputs['servers-updated']).toBe('db1 web1');
    for (const id of Object.values(ids)) expect((await serverInfo(e, id))['ide:0:1']).toBe(d2);
    expect(await claimedBy(e, d1)).toEqual([]);
  });

  it('leaves a server that already runs the drive alone', async () => {
    const { e, d2 } = await fleet([{ name: 'web1', ip: '127.0.0.11' }]);
    await runRollout(e, { drive: d2, 'health-check': 'none' });
    const before = resets();
    const again = await runRollout(e, { drive: d2, 'health-check': 'none' });
    expect(again.error).toBeUndefined();
    expect(again.lines.join('\n')).toMatch(/web1: already runs it/);
    expect(again.outputs).toMatchObject({ 'servers-updated': '', 'servers-restarted': '' });
    expect(resets()).toBe(before);
  });
});

describe('rollout, restart none, rollback, dry run', () => {
  it('restart none repoints only; the servers keep running the old release, and the ledger keeps it', async () => {
    const { e, d1, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11' },
      { name: 'web2', ip: '127.0.0.12' },
    ]);
    const target = await mkdtemp(path.join(tmpdir(), 'rollout-ledger-'));
    cleanup.push(() => rm(target, { recursive: true, force: true }));
    const r = await runRollout(e, {
      drive: d2,
      restart: 'none',
      'ledger-name': 'zone1',
      'rootfs-target': target,
    });
    expect(r.error).toBeUndefined();
    expect(resets()).toBe(0);
    expect(r.lines.join('\n')).toMatch(
      /restart: none: 2 server\(s\) repointed; they keep running the old drive and take boot-cd-bbbbbbbb .* at their next boot/,
    );
    for (const id of Object.values(ids)) expect((await serverInfo(e, id))['ide:0:1']).toBe(d2);
    expect((await claimedBy(e, d1)).sort()).toEqual(Object.values(ids).sort());
    expect(Object.fromEntries(r.summary)['Server web1']).toMatch(
      new RegExp(`^runs ${R1} \\(drive boot-cd-aaaaaaaa, .*\\) until its next boot, then ${R2} `),
    );
    const file = JSON.parse(
      await readFile(path.join(target, 'ledger', 'zone1.json'), 'utf8'),
    ) as Record<string, unknown>;
    expect(file).toEqual(JSON.parse(r.outputs.ledger));
    const inUse = await releasesInUse({
      target,
      current: undefined,
      mountTables: [],
      keepReleases: [],
    });
    expect(inUse.problems).toEqual([]);
    expect(inUse.reasons.get(R2)).toEqual(['ledger: zone1']);
    expect(inUse.reasons.get(R1)?.[0]).toMatch(
      /^ledger: zone1: drive [0-9a-f]{8} runs on web1, web2; previous drive/,
    );
  });

  it('rolls back by a rollout to the previous drive', async () => {
    const { e, d1, d2, ids } = await fleet([
      { name: 'web1', ip: '127.0.0.11' },
      { name: 'web2', ip: '127.0.0.12' },
    ]);
    const r = await runRollout(e, { drive: d2, 'health-check': 'none' });
    const back = await runRollout(e, {
      drive: r.outputs['previous-drive'],
      'health-check': 'none',
      'ledger-name': 'z',
    });
    expect(back.error).toBeUndefined();
    expect(back.outputs).toMatchObject({
      release: R1,
      'previous-drive': d2,
      'servers-restarted': 'web1 web2',
    });
    for (const id of Object.values(ids)) expect((await serverInfo(e, id))['ide:0:1']).toBe(d1);
    expect((await claimedBy(e, d1)).sort()).toEqual(Object.values(ids).sort());
    expect(JSON.parse(back.outputs.ledger)).toMatchObject({
      release: R1,
      also: [{ release: R2 }],
    });
  });

  it('dry run: says what it would do and changes nothing', async () => {
    const { e, d1, d2 } = await fleet([{ name: 'web1', ip: '127.0.0.11' }]);
    const r = await runRollout(e, { drive: d2, 'dry-run': 'true' });
    expect(r.error).toBeUndefined();
    expect(r.lines.join('\n')).toMatch(
      new RegExp(
        `web1: ide:0:1: boot-cd-aaaaaaaa \\(${R1}, ${d1.slice(0, 8)}\\) -> ${d2.slice(0, 8)}; reset`,
      ),
    );
    expect(r.outputs).toMatchObject({ 'dry-run': true, 'servers-updated': '' });
    expect(sets() + resets()).toBe(0);
    expect(await claimedBy(e, d1)).toHaveLength(1);
  });
});

describe('rollout, bad input and refusals', () => {
  it('refuses bad inputs and an unknown drive with one line, touching nothing', async () => {
    const { e } = await fleet([{ name: 'web1', ip: '127.0.0.11' }]);
    const missing = '0d0d0d0d-0000-4000-8000-000000000000';
    const cases: [Record<string, string>, RegExp][] = [
      [{ drive: 'boot-cd' }, /^Input "drive": got "boot-cd"; expected a UUID/],
      [
        { drive: missing, 'health-check': 'tcp:0' },
        /^Input "health-check": got "tcp:0"; expected tcp:<port> with a port from 1 to 65535/,
      ],
      [
        { drive: missing, 'health-check': 'ftp://{ip}/' },
        /^Input "health-check": got "ftp:\/\/\{ip\}\/"; expected tcp:<port>, an http\(s\) URL containing \{ip\} or \{name\}, or none$/,
      ],
      [
        { drive: missing, restart: 'always' },
        /^Input "restart": got "always"; expected one of rolling \| none$/,
      ],
      [
        { drive: missing, 'batch-size': '0' },
        /^Input "batch-size": got "0"; expected a whole number from 1 to 1000$/,
      ],
      [
        { drive: missing, device: 'hda' },
        /^Input "device": got "hda"; expected a CD device: ide:0:1 \(ide:B:U/,
      ],
      [
        { drive: missing, 'rootfs-target': '/srv/diskless' },
        /^Input "ledger-name" is required with "rootfs-target"/,
      ],
      [
        { drive: missing },
        new RegExp(
          `^Drive ${missing}: there is no drive with that UUID for user .* at http://127\\.0\\.0\\.1:\\d+/$`,
        ),
      ],
      [
        { drive: missing, 'api-key': 'wrong' },
        /^The API at http:\/\/127\.0\.0\.1:\d+\/ refused user .* \(HTTP 401 auth\): check api-user and api-key$/,
      ],
    ];
    for (const [inputs, message] of cases) {
      const r = await runRollout(e, inputs);
      expect(r.error?.message, JSON.stringify(inputs)).toMatch(message);
      expect(r.error?.message).not.toMatch(/\n/);
    }
    expect(sets() + resets()).toBe(0);
  });

  it('refuses a new drive of a family no server boots, unless servers and device are given', async () => {
    const { e, ids } = await fleet([{ name: 'web1', ip: '127.0.0.11' }]);
    const other = await createDrive(e, 'name rescue\nsize 1M\nclaim:type shared');
    const r = await runRollout(e, { drive: other, 'health-check': 'none' });
    expect(r.error?.message).toBe(
      'No server boots a drive of the family "rescue" (no CD device holds one); name the servers with the "servers" input',
    );
    const named = await runRollout(e, { drive: other, servers: 'web1', 'health-check': 'none' });
    expect(named.error?.message).toBe(
      'Server web1 has no CD device holding a drive of the family "rescue"; give the "device" input (e.g. ide:0:1)',
    );
    expect(sets()).toBe(0);
    const forced = await runRollout(e, {
      drive: other,
      servers: 'web1',
      device: 'ide:0:1',
      'health-check': 'none',
    });
    expect(forced.error).toBeUndefined();
    expect((await serverInfo(e, ids.web1 ?? ''))['ide:0:1']).toBe(other);
    expect(forced.outputs.release).toBe('');
  });
});

describe('rollout against the recorded quirks', () => {
  it('rolls out and reports an unknown drive (answered 400, not 404) as such', async () => {
    const { e, d2, ids } = await fleet(
      [
        { name: 'web1', ip: '127.0.0.11' },
        { name: 'web2', ip: '127.0.0.12' },
      ],
      true,
    );
    const health = await tcpListeners(['127.0.0.11', '127.0.0.12']);
    cleanup.push(() => {
      health.close();
    });
    const r = await runRollout(e, { drive: d2, 'health-check': `tcp:${health.port}` });
    expect(r.error).toBeUndefined();
    expect(r.outputs['servers-restarted']).toBe('web1 web2');
    expect((await claimedBy(e, d2)).sort()).toEqual(Object.values(ids).sort());
    const missing = '0d0d0d0d-0000-4000-8000-000000000000';
    expect((await call(e, `drives/${missing}/info`)).status).toBe(400);
    const bad = await runRollout(e, { drive: missing });
    expect(bad.error?.message).toMatch(/^Drive 0d0d0d0d-.*: there is no drive with that UUID/);
  });
});
