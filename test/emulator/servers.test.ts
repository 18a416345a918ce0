/**
 * The servers calls over real HTTP, state only (no runner): the server's life, the claims
 * a running server holds on its drives, device changes that wait for a reset, and every
 * refusal with its status and X-Elastic-Error.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ServerRunner } from '../../src/emulator/server-runner.js';
import { bob, call, createDrive, properties, start, alice, type Started } from './helpers.js';

let s: Started;
beforeEach(async () => {
  s = await start();
});
afterEach(async () => {
  await s.stop();
});

/** A server's (or a drive's) info as key -> text value. */
async function info(object: 'servers' | 'drives', uuid: string): Promise<Record<string, string>> {
  const r = await call(s.emulator, `${object}/${uuid}/info`);
  expect(r.status, r.text).toBe(200);
  return properties(r.text);
}

async function createServer(body: string, stopped = false): Promise<string> {
  const r = await call(s.emulator, stopped ? 'servers/create/stopped' : 'servers/create', {
    body,
  });
  expect(r.status, r.text).toBe(200);
  return properties(r.text).server ?? '';
}

async function post(p: string): Promise<number> {
  return (await call(s.emulator, p, { method: 'POST' })).status;
}

describe('servers', () => {
  it('creates a running server whose drives show it as their claimant', async () => {
    const disk = await createDrive(s.emulator, 'name disk\nsize 1M');
    const cd = await createDrive(s.emulator, 'name cd\nsize 1M\nclaim:type shared');
    const r = await call(s.emulator, 'servers/create', {
      body: `name web1\ncpu 2000\nmem 1024\npersistent true\nide:0:0 ${disk}\nide:0:1 ${cd}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:model virtio\nnic:0:dhcp auto\ntags web\nuser:role app`,
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-elastic-output']).toBe('properties');
    const server = properties(r.text);
    expect(server).toMatchObject({
      name: 'web1',
      user: alice.user,
      status: 'active',
      cpu: '2000',
      mem: '1024',
      smp: 'auto',
      persistent: 'true',
      'ide:0:0': disk,
      'ide:0:1': cd,
      'ide:0:1:media': 'cdrom',
      boot: 'ide:0:1',
      'nic:0:model': 'virtio',
      'nic:0:dhcp': 'auto',
      'nic:0:dhcp:ip': '10.0.2.15',
      tags: 'web',
      'user:role': 'app',
    });
    expect(Number(server.started)).toBeGreaterThan(1.7e9);
    const uuid = server.server ?? '';
    expect((await info('drives', disk)).claimed).toBe(`${alice.user}:guest:${uuid}:ide:0:0`);
    expect((await info('drives', cd)).claimed).toBe(`${alice.user}:guest:${uuid}:ide:0:1`);
    expect((await call(s.emulator, 'servers/list')).text).toBe(`${uuid}\n`);
    const json = await call(s.emulator, 'servers/info', {
      headers: { accept: 'application/json' },
    });
    const all = JSON.parse(json.text) as Record<string, unknown>[];
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ server: uuid, cpu: 2000, mem: 1024, boot: ['ide:0:1'] });
    expect(await readdir(path.join(s.dataDir, 'servers'))).toEqual([`${uuid}.json`]);
  });

  it('creates stopped, starts, stops and destroys; claims come and go with the run', async () => {
    const disk = await createDrive(s.emulator, 'name disk\nsize 1M');
    const uuid = await createServer(
      `name s\ncpu 1000\nmem 512\npersistent true\nblock:0 ${disk}\nboot block:0`,
      true,
    );
    expect(await info('servers', uuid)).toMatchObject({ status: 'stopped' });
    expect((await info('servers', uuid)).started).toBeUndefined();
    expect((await info('drives', disk)).claimed).toBeUndefined();
    expect(await post(`servers/${uuid}/start`)).toBe(204);
    expect(await info('servers', uuid)).toMatchObject({ status: 'active' });
    expect((await info('drives', disk)).claimed).toBe(`${alice.user}:guest:${uuid}:block:0`);
    expect(await post(`servers/${uuid}/stop`)).toBe(204);
    expect(await info('servers', uuid)).toMatchObject({ status: 'stopped' });
    expect((await info('drives', disk)).claimed).toBeUndefined();
    expect(await post(`servers/${uuid}/start`)).toBe(204);
    expect(await post(`servers/${uuid}/shutdown`)).toBe(204); // state only: stops at once
    expect(await info('servers', uuid)).toMatchObject({ status: 'stopped' });
    expect(await post(`servers/${uuid}/start`)).toBe(204);
    expect(await post(`servers/${uuid}/destroy`)).toBe(204); // a running one too
    expect((await call(s.emulator, `servers/${uuid}/info`)).status).toBe(404);
    expect((await info('drives', disk)).claimed).toBeUndefined();
    expect(await readdir(path.join(s.dataDir, 'servers'))).toEqual([]);
  });

  it('destroys a non-persistent server when it is stopped', async () => {
    const uuid = await createServer('name temp\ncpu 1000\nmem 512');
    expect(await info('servers', uuid)).toMatchObject({ persistent: 'false', status: 'active' });
    expect(await post(`servers/${uuid}/stop`)).toBe(204);
    const gone = await call(s.emulator, `servers/${uuid}/info`);
    expect(gone.status).toBe(404);
    expect(gone.headers['x-elastic-error']).toBe(
      `missing Server ${uuid} could not be found. Please re-validate your entry.`,
    );
  });

  it('keeps device changes of a running server pending until its reset', async () => {
    const oldCd = await createDrive(s.emulator, 'name old\nsize 1M\nclaim:type shared');
    const newCd = await createDrive(s.emulator, 'name new\nsize 1M\nclaim:type shared');
    const uuid = await createServer(
      `name s\ncpu 1000\nmem 512\npersistent true\nide:0:1 ${oldCd}\nide:0:1:media cdrom\nboot ide:0:1`,
    );
    const started = (await info('servers', uuid)).started;
    const set = await call(s.emulator, `servers/${uuid}/set`, {
      body: `ide:0:1 ${newCd}\nname renamed`,
    });
    expect(set.status).toBe(200);
    expect(properties(set.text)).toMatchObject({ name: 'renamed', 'ide:0:1': newCd });
    // Still running off the old CD.
    expect((await info('drives', oldCd)).claimed).toBe(`${alice.user}:guest:${uuid}:ide:0:1`);
    expect((await info('drives', newCd)).claimed).toBeUndefined();
    expect(await post(`servers/${uuid}/reset`)).toBe(204);
    expect((await info('drives', oldCd)).claimed).toBeUndefined();
    expect((await info('drives', newCd)).claimed).toBe(`${alice.user}:guest:${uuid}:ide:0:1`);
    expect(Number((await info('servers', uuid)).started)).toBeGreaterThanOrEqual(Number(started));
    // An empty value detaches: the drive is no longer claimed after the next start.
    await call(s.emulator, `servers/${uuid}/set`, { body: 'ide:0:1 \nide:0:1:media \nboot ' });
    await post(`servers/${uuid}/stop`);
    await post(`servers/${uuid}/start`);
    const after = await info('servers', uuid);
    expect(after['ide:0:1']).toBeUndefined();
    expect((await info('drives', newCd)).claimed).toBeUndefined();
  });

  it('refuses writes to and destroy of a drive a running server claims (exclusive: 409)', async () => {
    const exclusive = await createDrive(s.emulator, 'name ex\nsize 1M');
    const shared = await createDrive(s.emulator, 'name sh\nsize 1M\nclaim:type shared');
    const uuid = await createServer(
      `name s\ncpu 1000\nmem 512\nide:0:0 ${exclusive}\nide:0:1 ${shared}`,
    );
    const refused = await call(s.emulator, `drives/${exclusive}/write/0`, { body: 'data' });
    expect(refused.status).toBe(409);
    expect(refused.headers['x-elastic-error']).toMatch(
      new RegExp(`^busy Drive ${exclusive} is claimed by ${alice.user}:guest:${uuid}:ide:0:0`),
    );
    expect((await info('drives', exclusive))['write:requests']).toBe('0');
    const written = await call(s.emulator, `drives/${shared}/write/0`, { body: 'data' });
    expect(written.status).toBe(204);
    expect((await call(s.emulator, `drives/${shared}/read/0/4`)).text).toBe('data');
    const resized = await call(s.emulator, `drives/${exclusive}/set`, { body: 'size 2M' });
    expect(resized.status).toBe(409);
    expect((await info('drives', exclusive)).size).toBe(String(2 ** 20));
    for (const d of [exclusive, shared]) {
      const r = await call(s.emulator, `drives/${d}/destroy`, { method: 'POST' });
      expect(r.status).toBe(409);
      expect(r.headers['x-elastic-error']).toMatch(/^busy /);
    }
    await post(`servers/${uuid}/destroy`);
    expect((await call(s.emulator, `drives/${exclusive}/write/0`, { body: 'data' })).status).toBe(
      204,
    );
  });

  it('starts a second server on an exclusive drive only when the first has stopped', async () => {
    const disk = await createDrive(s.emulator, 'name disk\nsize 1M');
    const cd = await createDrive(s.emulator, 'name cd\nsize 1M\nclaim:type shared');
    const body = `cpu 1000\nmem 512\npersistent true\nide:0:0 ${disk}\nide:0:1 ${cd}`;
    const first = await createServer(`name a\n${body}`);
    const second = await createServer(`name b\n${body}`, true);
    const r = await call(s.emulator, `servers/${second}/start`, { method: 'POST' });
    expect(r.status).toBe(409);
    expect(r.headers['x-elastic-error']).toMatch(/^busy Drive .* is exclusive and claimed by /);
    const refusedCreate = await call(s.emulator, 'servers/create', { body: `name c\n${body}` });
    expect(refusedCreate.status).toBe(409);
    expect((await call(s.emulator, 'servers/list')).text.split('\n').filter(Boolean)).toHaveLength(
      2,
    );
    await post(`servers/${first}/stop`);
    expect(await post(`servers/${second}/start`)).toBe(204);
    // The shared CD may be claimed by several running servers.
    const third = await createServer(`name d\ncpu 1000\nmem 512\nide:0:1 ${cd}`);
    expect((await info('drives', cd)).claimed?.split(' ').sort()).toEqual(
      [`${alice.user}:guest:${second}:ide:0:1`, `${alice.user}:guest:${third}:ide:0:1`].sort(),
    );
  });

  it('answers every refusal with its status and X-Elastic-Error type', async () => {
    const disk = await createDrive(s.emulator, 'name disk\nsize 1M');
    const uuid = await createServer(`name s\ncpu 1000\nmem 512\npersistent true\nide:0:0 ${disk}`);
    const missing = '00000000-0000-4000-8000-00000000dead';
    const cases: [string, string | undefined, number, string][] = [
      ['servers/create', 'cpu 1000\nmem 512', 400, 'usage'],
      ['servers/create', 'name x\nmem 512', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem lots', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nsmp many', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\npersistent yes', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nide:0:0 not-a-uuid', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nide:2:0 ' + disk, 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nide:0:0:media floppy', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nboot ide:0:0', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nnic:0:model ne2000', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nnic:0:dhcp 10.0.2.300', 400, 'usage'],
      ['servers/create', 'name x\ncpu 1000\nmem 512\nstatus active', 400, 'usage'],
      ['servers/create', `name x\ncpu 1000\nmem 512\nide:0:0 ${missing}`, 404, 'missing'],
      [`servers/${uuid}/set`, 'ide:0:1 not-a-uuid', 400, 'usage'],
      [`servers/${uuid}/set`, 'name ', 400, 'usage'],
      [`servers/${missing}/info`, undefined, 404, 'missing'],
      [`servers/${missing}/set`, 'name x', 404, 'missing'],
      [`servers/${missing}/start`, '', 404, 'missing'],
      [`servers/${uuid}/start`, '', 409, 'busy'],
      ['servers/nothing', undefined, 404, 'missing'],
    ];
    for (const [p, body, status, type] of cases) {
      const r = await call(s.emulator, p, { body });
      expect(r.status, `${p} ${body ?? ''}: ${r.text}`).toBe(status);
      expect(r.headers['x-elastic-error']).toMatch(new RegExp(`^${type} \\S`));
      expect(r.text).toMatch(new RegExp(`^errors:${type} `));
    }
    await post(`servers/${uuid}/stop`);
    for (const action of ['stop', 'shutdown', 'reset']) {
      const r = await call(s.emulator, `servers/${uuid}/${action}`, { method: 'POST' });
      expect(r.status, action).toBe(409);
      expect(r.headers['x-elastic-error']).toBe(`busy Server ${uuid} is not running`);
    }
    for (const action of ['start', 'stop', 'destroy', 'set']) {
      const r = await call(s.emulator, `servers/${uuid}/${action}`, { method: 'GET' });
      expect(r.status, action).toBe(405);
      expect(r.headers['x-elastic-error']).toMatch(/^method /);
    }
    // Another account sees nothing of it.
    expect((await call(s.emulator, `servers/${uuid}/info`, { as: bob })).status).toBe(404);
    expect((await call(s.emulator, 'servers/list', { as: bob })).text).toBe('');
    expect(await info('servers', uuid)).toMatchObject({ name: 's', status: 'stopped' });
  });

  it('keeps persistent servers across a restart, stopped', async () => {
    const uuid = await createServer('name keep\ncpu 1000\nmem 512\npersistent true');
    const temp = await createServer('name temp\ncpu 1000\nmem 512');
    await s.emulator.close();
    const again = await start({}, s.dataDir);
    try {
      const r = await call(again.emulator, `servers/${uuid}/info`);
      expect(properties(r.text)).toMatchObject({ name: 'keep', status: 'stopped' });
      expect((await call(again.emulator, `servers/${temp}/info`)).status).toBe(404);
    } finally {
      await again.emulator.close();
    }
  });
});

// A stand-in runner (unit level): its machines take a moment to start, as QEMU's do.
describe('servers with a runner', () => {
  it("gives servers started at once distinct auto addresses in the runner's network", async () => {
    const asked: (string | undefined)[] = [];
    const runner: ServerRunner = {
      network: '10.213.9',
      async start(spec) {
        asked.push(spec.ip);
        await new Promise((r) => setTimeout(r, 50));
        return {
          ip: spec.ip ?? '',
          exited: new Promise(() => undefined),
          stop: () => Promise.resolve(),
          shutdown: () => Promise.resolve(),
        };
      },
      close: () => Promise.resolve(),
    };
    const r = await start({ runner });
    try {
      const created = await Promise.all(
        ['web1', 'web2', 'web3'].map((name) =>
          call(r.emulator, 'servers/create', {
            body: `name ${name}\ncpu 1000\nmem 512\nnic:0:dhcp auto`,
          }),
        ),
      );
      const ips = created.map((c) => properties(c.text)['nic:0:dhcp:ip']);
      expect(new Set(ips).size).toBe(3);
      expect(ips.every((ip) => /^10\.213\.9\.(1[5-7])$/.test(ip ?? ''))).toBe(true);
      expect([...asked].sort()).toEqual([...ips].sort());
    } finally {
      await r.stop();
    }
  });
});
