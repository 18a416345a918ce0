/**
 * The real service's recorded quirks (elastichosts-api.md section 9), each behind its
 * switch, over real HTTP: what changes with the switch on, and that it is off by default.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RECORDED_QUIRKS, type Quirks } from '../../src/emulator/index.js';
import { call, createDrive, properties, start, type Started } from './helpers.js';

const JSON_IO = { accept: 'application/json', 'content-type': 'application/json' };
let s: Started | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

async function emulator(quirks: Quirks): Promise<Started> {
  s = await start({ quirks });
  return s;
}

async function jsonInfo(e: Started, uuid: string): Promise<Record<string, unknown>> {
  const r = await call(e.emulator, `drives/${uuid}/info`, { headers: JSON_IO });
  return JSON.parse(r.text) as Record<string, unknown>;
}

describe('recorded quirks', () => {
  it('are all off by default', async () => {
    const e = await emulator({});
    const uuid = await createDrive(e.emulator, 'name d\nsize 1M');
    const info = await jsonInfo(e, uuid);
    expect(info).toMatchObject({
      'claim:type': 'exclusive',
      readers: [],
      tags: [],
      'write:bytes': 0,
      'write:requests': 0,
    });
    // Flip the last hex digit so the UUID is always a different, unknown one.
    const other = uuid.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    const missing = await call(e.emulator, `drives/${other}/info`);
    expect(missing.status).toBe(404);
  });

  it('stringCounters: counters come as JSON strings, size stays a number', async () => {
    const e = await emulator({ stringCounters: true });
    const uuid = await createDrive(e.emulator, 'name d\nsize 1M');
    await call(e.emulator, `drives/${uuid}/write/0`, { body: 'abc' });
    expect(await jsonInfo(e, uuid)).toMatchObject({
      size: 2 ** 20,
      'write:bytes': '3',
      'write:requests': '1',
      'read:bytes': '0',
    });
  });

  it('omitDefaults: no claim:type exclusive, no empty readers or tags, no default server keys', async () => {
    const e = await emulator({ omitDefaults: true });
    const plain = await createDrive(e.emulator, 'name d\nsize 1M');
    const info = await jsonInfo(e, plain);
    for (const key of ['claim:type', 'readers', 'tags']) expect(info).not.toHaveProperty(key);
    const shared = await createDrive(e.emulator, 'name s\nsize 1M\nclaim:type shared\ntags a');
    expect(await jsonInfo(e, shared)).toMatchObject({ 'claim:type': 'shared', tags: ['a'] });
    const server = await call(e.emulator, 'servers/create/stopped', {
      body: 'name s\ncpu 1000\nmem 512',
    });
    const keys = properties(server.text);
    expect(keys).not.toHaveProperty('smp');
    expect(keys).not.toHaveProperty('persistent');
  });

  it('notFoundAs400: a missing drive or server is 400 system "could not be found"', async () => {
    const e = await emulator({ notFoundAs400: true });
    const uuid = '00000000-0000-4000-8000-00000000dead';
    const drive = await call(e.emulator, `drives/${uuid}/info`);
    expect(drive.status).toBe(400);
    expect(drive.headers['x-elastic-error']).toBe(
      `system Drive ${uuid} could not be found. Please re-validate your entry.`,
    );
    expect(drive.text).toBe(
      `errors:system Drive ${uuid} could not be found. Please re-validate your entry.\n`,
    );
    const server = await call(e.emulator, `servers/${uuid}/start`, { method: 'POST' });
    expect(server.status).toBe(400);
    expect(server.headers['x-elastic-error']).toMatch(/^system Server .* could not be found/);
    // Other errors keep their status.
    expect((await call(e.emulator, 'drives/create', { body: 'name x' })).status).toBe(400);
    expect((await call(e.emulator, 'nothing/here')).status).toBe(404);
  });

  it("serviceWrite: a fresh drive shows the service's own 4 KiB write and reads as zeros", async () => {
    const e = await emulator({ serviceWrite: true });
    const uuid = await createDrive(e.emulator, 'name d\nsize 8k');
    expect(properties((await call(e.emulator, `drives/${uuid}/info`)).text)).toMatchObject({
      'write:bytes': '4096',
      'write:requests': '1',
    });
    expect((await call(e.emulator, `drives/${uuid}/read/0/8192`)).body).toEqual(Buffer.alloc(8192));
  });

  it('oneWriterPerDrive: a second write to a drive while one is in progress is 409 busy', async () => {
    const e = await emulator({ oneWriterPerDrive: true });
    // A slow link keeps the first write in progress while the second arrives.
    e.emulator.setFaults({ connectionBytesPerSecond: 256 * 1024 });
    const uuid = await createDrive(e.emulator, 'name d\nsize 4M');
    const other = await createDrive(e.emulator, 'name o\nsize 4M');
    const first = call(e.emulator, `drives/${uuid}/write/0`, { body: Buffer.alloc(512 * 1024, 1) });
    for (;;) {
      if (e.emulator.stats.bytesReceived > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const second = await call(e.emulator, `drives/${uuid}/write/1048576`, { body: 'x' });
    expect(second.status).toBe(409);
    expect(second.headers['x-elastic-error']).toMatch(/^busy Drive \S+ has a write in progress/);
    const elsewhere = await call(e.emulator, `drives/${other}/write/0`, { body: 'x' });
    expect(elsewhere.status).toBe(204);
    expect((await first).status).toBe(204);
    const after = await call(e.emulator, `drives/${uuid}/write/1048576`, { body: 'x' });
    expect(after.status).toBe(204);
  });

  it('RECORDED_QUIRKS turns every one on', () => {
    expect(Object.values(RECORDED_QUIRKS).every(Boolean)).toBe(true);
    expect(Object.keys(RECORDED_QUIRKS).sort()).toEqual([
      'notFoundAs400',
      'omitDefaults',
      'oneWriterPerDrive',
      'serviceWrite',
      'stringCounters',
    ]);
  });
});
