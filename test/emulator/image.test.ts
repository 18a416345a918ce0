/**
 * The image call over real HTTP: a server-side copy (as is, gunzip, gzip) that takes time
 * in proportion to the source's size, shows its progress, queues behind another copy,
 * claims both drives meanwhile, and refuses what would collide with it.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync, gzipSync } from 'node:zlib';
import { sha256 } from '../../src/files.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alice, call, createDrive, properties, start, type Started } from './helpers.js';

const MiB = 2 ** 20;
let s: Started;
beforeEach(async () => {
  // 2 MiB/s: a 4 MiB source takes about 2 s, long enough to watch.
  s = await start({ imagingBytesPerSecond: 2 * MiB });
});
afterEach(async () => {
  await s.stop();
});

async function info(uuid: string, full = false): Promise<Record<string, string>> {
  const r = await call(s.emulator, `drives/${uuid}/info${full ? '/full' : ''}`);
  expect(r.status, r.text).toBe(200);
  return properties(r.text);
}

/** A drive holding `data` at offset 0, in 1 MiB writes. */
async function driveWith(name: string, size: number, data: Buffer): Promise<string> {
  const uuid = await createDrive(s.emulator, `name ${name}\nsize ${size}`);
  for (let at = 0; at < data.length; at += MiB) {
    const r = await call(s.emulator, `drives/${uuid}/write/${at}`, {
      body: data.subarray(at, at + MiB),
    });
    expect(r.status).toBe(204);
  }
  return uuid;
}

async function readAll(uuid: string, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < size; at += 4 * MiB) {
    const r = await call(s.emulator, `drives/${uuid}/read/${at}/${Math.min(4 * MiB, size - at)}`);
    parts.push(r.body);
  }
  return Buffer.concat(parts);
}

/** Polls info/full until `imaging` is gone; returns the values seen on the way. */
async function untilImaged(uuid: string): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const value = (await info(uuid, true)).imaging;
    if (value === undefined) return seen;
    if (seen.at(-1) !== value) seen.push(value);
    await sleep(50);
  }
}

async function image(dest: string, source: string, conversion = ''): Promise<number> {
  const r = await call(s.emulator, `drives/${dest}/image/${source}${conversion}`, {
    method: 'POST',
  });
  return r.status;
}

describe('the image call', () => {
  it('gunzips a gzip image onto a bigger drive, showing progress and claiming both', async () => {
    const content = Buffer.concat([randomBytes(3 * MiB), Buffer.alloc(MiB, 7)]);
    const packed = gzipSync(content, { level: 0 }); // incompressible: about as big
    const source = await driveWith('image.gz', 8 * MiB, packed);
    const dest = await createDrive(s.emulator, 'name system\nsize 160G');
    expect(await image(dest, source, '/gunzip')).toBe(204);

    const during = await info(dest);
    expect(during).toMatchObject({ imaging: 'true', status: 'imaging' });
    expect(during.claimed).toBe(`${alice.user}:imaging:${dest}`);
    expect((await info(source)).claimed).toBe(`${alice.user}:imaging:${dest}`);
    const refusals = [
      call(s.emulator, `drives/${dest}/write/0`, { body: 'x' }),
      call(s.emulator, `drives/${source}/write/0`, { body: 'x' }),
      call(s.emulator, `drives/${dest}/image/${source}`, { method: 'POST' }),
      call(s.emulator, `drives/${source}/destroy`, { method: 'POST' }),
    ];
    for (const r of await Promise.all(refusals)) {
      expect(r.status, r.text).toBe(409);
      expect(r.headers['x-elastic-error']).toMatch(/^busy Drive \S+ is being imaged/);
    }

    const seen = await untilImaged(dest);
    expect(seen.length).toBeGreaterThan(1);
    for (const v of seen) expect(v).toMatch(/^\d+%$/);
    const percents = seen.map((v) => parseInt(v, 10));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents[0]).toBeLessThan(100);

    const after = await info(dest);
    expect(after.status).toBe('active');
    expect(after.claimed).toBeUndefined();
    expect(after.size).toBe(String(160 * 2 ** 30));
    expect(sha256(await readAll(dest, content.length + MiB))).toBe(
      sha256(Buffer.concat([content, Buffer.alloc(MiB)])),
    );
  });

  it('copies as is and gzips; a second copy waits, queued', async () => {
    const content = randomBytes(4 * MiB);
    const source = await driveWith('src', 4 * MiB, content);
    const copy = await createDrive(s.emulator, 'name copy\nsize 6M');
    const packed = await createDrive(s.emulator, 'name packed\nsize 6M');
    expect(await image(copy, source)).toBe(204);
    const other = await driveWith('other', MiB, Buffer.from('other'));
    const otherCopy = await createDrive(s.emulator, 'name other copy\nsize 1M');
    expect(await image(otherCopy, other)).toBe(204);
    expect((await info(otherCopy)).imaging).toBe('queued');
    expect((await info(otherCopy, true)).imaging).toBe('queued');
    await untilImaged(copy);
    await untilImaged(otherCopy);
    expect(sha256(await readAll(copy, 6 * MiB))).toBe(
      sha256(Buffer.concat([content, Buffer.alloc(2 * MiB)])),
    );
    expect((await readAll(otherCopy, 5)).toString()).toBe('other');

    expect(await image(packed, source, '/gzip')).toBe(204);
    await untilImaged(packed);
    const stored = await readAll(packed, 6 * MiB);
    expect(sha256(gunzipSync(stored))).toBe(sha256(content));
  });

  it('refuses a copy that does not fit, onto itself, of a missing drive, onto a claimed one', async () => {
    const big = await createDrive(s.emulator, 'name big\nsize 2M');
    const small = await createDrive(s.emulator, 'name small\nsize 1M');
    const missing = '00000000-0000-4000-8000-00000000dead';
    const cases: [string, number, string][] = [
      [`drives/${small}/image/${big}`, 400, 'usage'],
      [`drives/${big}/image/${big}`, 400, 'usage'],
      [`drives/${big}/image/${missing}`, 404, 'missing'],
      [`drives/${missing}/image/${big}`, 404, 'missing'],
      [`drives/${big}/image/${small}/zip`, 404, 'missing'],
    ];
    for (const [p, status, type] of cases) {
      const r = await call(s.emulator, p, { method: 'POST' });
      expect(r.status, p).toBe(status);
      expect(r.headers['x-elastic-error']).toMatch(new RegExp(`^${type} `));
    }
    expect((await call(s.emulator, `drives/${big}/image/${small}`)).status).toBe(405);
    const server = await call(s.emulator, 'servers/create', {
      body: `name s\ncpu 1000\nmem 512\nide:0:0 ${big}`,
    });
    expect(server.status).toBe(200);
    const r = await call(s.emulator, `drives/${big}/image/${small}`, { method: 'POST' });
    expect(r.status).toBe(409);
    expect(r.headers['x-elastic-error']).toMatch(/^busy Drive \S+ is claimed by /);
    expect((await info(big)).imaging).toBeUndefined();
  });

  it('refuses to start a server on a drive being imaged', async () => {
    const source = await driveWith('src', 4 * MiB, randomBytes(4 * MiB));
    const dest = await createDrive(s.emulator, 'name dest\nsize 4M');
    expect(await image(dest, source)).toBe(204);
    const r = await call(s.emulator, 'servers/create', {
      body: `name s\ncpu 1000\nmem 512\nide:0:0 ${dest}`,
    });
    expect(r.status).toBe(409);
    expect(r.headers['x-elastic-error']).toMatch(/^busy Drive \S+ is being imaged/);
    expect((await call(s.emulator, 'servers/list')).text).toBe('');
  });
});
