import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alice, bob, call, createDrive, properties, start, type Started } from './helpers.js';

let s: Started;
beforeEach(async () => {
  s = await start();
});
afterEach(async () => {
  await s.stop();
});

describe('drive calls', () => {
  it('creates a drive from a text body with the documented defaults', async () => {
    const r = await call(s.emulator, 'drives/create', {
      body: 'name boot image\nsize 10M\ntags a b\nuser:role app\n',
      headers: { 'content-type': 'text/plain' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['x-elastic-output']).toBe('properties');
    const info = properties(r.text);
    expect(info).toMatchObject({
      name: 'boot image',
      size: String(10 * 2 ** 20),
      user: alice.user,
      status: 'active',
      'claim:type': 'exclusive',
      tags: 'a b',
      'user:role': 'app',
      'encryption:cipher': 'aes-xts-plain',
      tier: 'disk',
      'read:bytes': '0',
      'read:requests': '0',
      'write:bytes': '0',
      'write:requests': '0',
    });
    expect(info.drive).toMatch(/^[0-9a-f-]{36}$/);
    const files = await readdir(path.join(s.dataDir, 'drives'));
    expect(files.sort()).toEqual([`${info.drive ?? ''}.img`, `${info.drive ?? ''}.json`].sort());
  });

  it('takes JSON in and gives JSON out', async () => {
    const r = await call(s.emulator, 'drives/create', {
      body: JSON.stringify({ name: 'j', size: '2G', 'claim:type': 'shared', tags: ['x', 'y'] }),
      headers: { 'content-type': 'application/json', accept: 'application/json' },
    });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const info = JSON.parse(r.text) as Record<string, unknown>;
    expect(info).toMatchObject({
      name: 'j',
      size: 2 ** 31,
      'claim:type': 'shared',
      tags: ['x', 'y'],
    });
    const list = await call(s.emulator, 'drives/list', { headers: { accept: 'application/json' } });
    expect(list.headers['x-elastic-output']).toBe('list');
    expect(JSON.parse(list.text)).toEqual([{ drive: info.drive }]);
    const all = await call(s.emulator, 'drives/info', { headers: { accept: 'application/json' } });
    expect(JSON.parse(all.text)).toEqual([info]);
  });

  it('lists in text (one UUID a line) and gives info blocks separated by a blank line', async () => {
    const a = await createDrive(s.emulator, 'name a\nsize 1k');
    const b = await createDrive(s.emulator, 'name b\nsize 1M');
    const list = await call(s.emulator, 'drives/list');
    expect(list.headers['x-elastic-output']).toBe('list');
    expect(list.text).toBe(`${a}\n${b}\n`);
    const post = await call(s.emulator, 'drives/list', { method: 'POST' });
    expect(post.text).toBe(list.text); // reads take POST too, as the stock CLI sends
    for (const p of ['drives/info', 'drives/info/full']) {
      const blocks = (await call(s.emulator, p)).text.split('\n\n').map(properties);
      expect(blocks.map((bl) => [bl.drive, bl.size])).toEqual([
        [a, '1024'],
        [b, String(2 ** 20)],
      ]);
    }
    const one = await call(s.emulator, `drives/${b}/info/full`);
    expect(properties(one.text)).toMatchObject({ drive: b, name: 'b' });
  });

  it('sets name, size, claim type, tags, readers and user keys, and returns the info', async () => {
    const uuid = await createDrive(s.emulator, 'name old\nsize 1k\nuser:gone x\nuser:kept y');
    const r = await call(s.emulator, `drives/${uuid}/set`, {
      body: `name new\nsize 2k\nclaim:type shared\ntags t1\nreaders ${bob.user}\nuser:gone \nuser:added z`,
    });
    expect(r.status).toBe(200);
    const info = properties(r.text);
    expect(info).toMatchObject({
      name: 'new',
      size: '2048',
      'claim:type': 'shared',
      tags: 't1',
      readers: bob.user,
      'user:kept': 'y',
      'user:added': 'z',
    });
    expect(info['user:gone']).toBeUndefined();
    expect(properties((await call(s.emulator, `drives/${uuid}/info`)).text)).toEqual(info);
    // The data file follows the new size: the grown part reads as zeros.
    const tail = await call(s.emulator, `drives/${uuid}/read/1024/1024`);
    expect(tail.status).toBe(200);
    expect(tail.body).toEqual(Buffer.alloc(1024));
  });

  it('refuses unknown, read-only and create-only keys and bad values with 400 usage', async () => {
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    const cases: [string, string][] = [
      ['drives/create', 'name x'],
      ['drives/create', 'size 1G'],
      ['drives/create', 'name x\nsize 0'],
      ['drives/create', 'name x\nsize 1.5G'],
      ['drives/create', 'name x\nsize 1k\nclaim:type mine'],
      ['drives/create', 'name x\nsize 1k\nbogus 1'],
      ['drives/create', 'name x\nsize 1k\nreaders not-a-uuid'],
      [`drives/${uuid}/set`, 'tier ssd'],
      [`drives/${uuid}/set`, 'write:bytes 0'],
    ];
    for (const [p, body] of cases) {
      const r = await call(s.emulator, p, { body });
      expect(r.status, `${p} ${body}`).toBe(400);
      expect(r.headers['x-elastic-error']).toMatch(/^usage /);
      expect(r.text).toMatch(/^errors:usage \S.*\n$/);
    }
    const bad = await call(s.emulator, 'drives/create', {
      body: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect((await call(s.emulator, 'drives/list')).text).toBe(`${uuid}\n`);
  });

  it('destroys a drive (204): it and its files are gone', async () => {
    const uuid = await createDrive(s.emulator, 'name d\nsize 1M');
    const r = await call(s.emulator, `drives/${uuid}/destroy`, { method: 'POST' });
    expect(r.status).toBe(204);
    expect(r.body.length).toBe(0);
    const gone = await call(s.emulator, `drives/${uuid}/info`, {
      headers: { accept: 'application/json' },
    });
    expect(gone.status).toBe(404);
    expect(gone.headers['x-elastic-error']).toMatch(/^missing Drive /);
    // Plain text error body in JSON mode too.
    expect(gone.text).toBe(
      `errors:missing Drive ${uuid} could not be found. Please re-validate your entry.\n`,
    );
    expect(await readdir(path.join(s.dataDir, 'drives'))).toEqual([]);
    expect((await call(s.emulator, `drives/${uuid}/destroy`, { method: 'POST' })).status).toBe(404);
  });

  it('answers 405 method to a change sent as GET, and 404 to unknown calls', async () => {
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    for (const p of [
      'drives/create',
      `drives/${uuid}/set`,
      `drives/${uuid}/destroy`,
      `drives/${uuid}/write`,
    ]) {
      const r = await call(s.emulator, p, { method: 'GET' });
      expect(r.status, p).toBe(405);
      expect(r.headers['x-elastic-error']).toMatch(/^method /);
    }
    expect((await call(s.emulator, 'drives/list', { method: 'PUT' })).status).toBe(405);
    expect((await call(s.emulator, `drives/${uuid}/info`)).status).toBe(200);
    const unknown = await call(s.emulator, 'resources/list');
    expect(unknown.status).toBe(404);
    expect(unknown.headers['x-elastic-error']).toMatch(/^missing /);
  });
});

describe('accounts', () => {
  it('refuses missing or wrong credentials with 401 auth', async () => {
    for (const as of [
      null,
      { user: alice.user, key: 'wrong' },
      { user: 'nobody', key: alice.key },
    ]) {
      const r = await call(s.emulator, 'drives/list', { as });
      expect(r.status).toBe(401);
      expect(r.headers['x-elastic-error']).toMatch(/^auth /);
      expect(r.headers['www-authenticate']).toMatch(/^Basic /);
      expect(r.text).toMatch(/^errors:auth /);
    }
    const garbage = await call(s.emulator, 'drives/list', {
      as: null,
      headers: { authorization: 'Basic !!!' },
    });
    expect(garbage.status).toBe(401);
  });

  it("keeps each account's drives to itself: others get 404 missing", async () => {
    const uuid = await createDrive(s.emulator, 'name mine\nsize 4k');
    expect((await call(s.emulator, `drives/${uuid}/write`, { body: 'alice' })).status).toBe(204);
    const asBob = { as: bob };
    expect((await call(s.emulator, 'drives/list', asBob)).text).toBe('');
    expect((await call(s.emulator, 'drives/info', asBob)).text).toBe('');
    const attempts = [
      call(s.emulator, `drives/${uuid}/info`, asBob),
      call(s.emulator, `drives/${uuid}/read/0/5`, asBob),
      call(s.emulator, `drives/${uuid}/write`, { ...asBob, body: 'bob!!' }),
      call(s.emulator, `drives/${uuid}/set`, { ...asBob, body: 'name stolen' }),
      call(s.emulator, `drives/${uuid}/destroy`, { ...asBob, method: 'POST' }),
    ];
    for (const r of await Promise.all(attempts)) {
      expect(r.status).toBe(404);
      expect(r.headers['x-elastic-error']).toMatch(/^missing /);
    }
    const mine = await call(s.emulator, `drives/${uuid}/read/0/5`);
    expect(mine.text).toBe('alice');
    expect(properties((await call(s.emulator, `drives/${uuid}/info`)).text)).toMatchObject({
      name: 'mine',
      'write:requests': '1',
    });
    const bobs = await createDrive(s.emulator, 'name bobs\nsize 1k', bob);
    expect((await call(s.emulator, 'drives/list', asBob)).text).toBe(`${bobs}\n`);
    expect((await call(s.emulator, 'drives/list')).text).toBe(`${uuid}\n`);
  });
});

describe('persistence', () => {
  it('a new emulator on the same data dir has the same drives, data and counters', async () => {
    const uuid = await createDrive(s.emulator, 'name keep\nsize 1M\ntags t\nuser:k v');
    const data = Buffer.from('persisted bytes');
    expect((await call(s.emulator, `drives/${uuid}/write/1000`, { body: data })).status).toBe(204);
    expect((await call(s.emulator, `drives/${uuid}/read/1000/${data.length}`)).body).toEqual(data);
    const before = properties((await call(s.emulator, `drives/${uuid}/info`)).text);
    expect(before).toMatchObject({ 'write:bytes': String(data.length), 'read:requests': '1' });
    await s.emulator.close();

    const again = await start({}, s.dataDir);
    s = again;
    const after = properties((await call(again.emulator, `drives/${uuid}/info`)).text);
    expect(after).toEqual(before);
    const read = await call(again.emulator, `drives/${uuid}/read/1000/${data.length}`);
    expect(read.body).toEqual(data);
    expect((await call(again.emulator, `drives/${uuid}/read/0/1000`)).body).toEqual(
      Buffer.alloc(1000),
    );
  });
});
