// upload-drive's standby mode over real HTTP against the emulator with state-only servers:
// a new drive per image, made by a server-side copy of the live drive so only changed
// chunks travel, verified whole and recorded; reuse; the in-place mode's refusal of a
// claimed drive; retention that never removes a claimed or the previous drive.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORDED_QUIRKS, type Emulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { InputError } from '../../src/errors.js';
import {
  api,
  emulator,
  isoLike,
  KEY,
  MiB,
  options,
  readDrive,
  run,
  tmpDir,
  USER,
  writeImage,
} from './helpers.js';

const AUTH = `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`;

let emu: Emulator;
let state: string;
async function start(extra: Partial<EmulatorOptions> = {}) {
  emu = await emulator(undefined, extra);
  state = await tmpDir();
}
afterEach(async () => {
  await emu.close();
});

/** A running (state-only) server booting `cd` from its CD drive: it claims the drive. */
async function startServer(name: string, cd: string): Promise<string> {
  const res = await fetch(new URL('servers/create', emu.url), {
    method: 'POST',
    headers: {
      authorization: AUTH,
      accept: 'application/json',
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      name,
      cpu: '1000',
      mem: '512',
      'ide:0:1': cd,
      'ide:0:1:media': 'cdrom',
      boot: 'ide:0:1',
    }),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return (JSON.parse(text) as { server: string }).server;
}

async function drivesNamed(prefix: string) {
  const client = api(emu.url);
  try {
    return (await client.infoAll()).filter((d) => d.name.startsWith(prefix));
  } finally {
    await client.close();
  }
}

async function infoOf(uuid: string) {
  const client = api(emu.url);
  try {
    return await client.info(uuid);
  } finally {
    await client.close();
  }
}

/** `base` with the 4 MiB at `at` replaced by new random bytes. */
function changed(base: Buffer, at: number): Buffer {
  const next = Buffer.from(base);
  randomBytes(4 * MiB).copy(next, at);
  return next;
}

const standby = (image: string, extra: Record<string, string> = {}) => ({
  image,
  'drive-name': 'fleet-boot',
  'state-dir': state,
  mode: 'standby',
  ...extra,
});

describe('standby mode', () => {
  beforeEach(async () => {
    await start();
  });

  it('is the default mode', () => {
    const o = options(emu.url, { image: '/x.iso', 'drive-name': 'b', mode: '' });
    expect(o.mode).toBe('standby');
  });

  it('writes each image to a new drive, copying the claimed live drive on the server and sending only the changed chunk', async () => {
    const a = isoLike(16 * MiB);
    const first = await run(emu.url, standby(await writeImage(a), { release: '20260101T000000Z' }));
    expect(first.created).toBe(true);
    expect(first.driveName).toBe(`fleet-boot-${first.sha256.slice(0, 8)}`);
    expect(first.previous).toBeUndefined();
    expect(first.copiedFrom).toBeUndefined();
    expect(first.chunksVerified).toBe(4); // every chunk read back whole
    expect(first.bytesRead).toBe(a.length);
    const recorded = await infoOf(first.driveUuid);
    expect(recorded.meta).toMatchObject({
      'diskless-sha256': first.sha256,
      'diskless-release': '20260101T000000Z',
    });
    const server = await startServer('web-1', first.driveUuid);
    expect((await infoOf(first.driveUuid)).claimed).toContain(server);

    const b = changed(a, 8 * MiB);
    const lines: string[] = [];
    const second = await run(
      emu.url,
      standby(await writeImage(b), { release: '20260102T000000Z' }),
      lines,
    );
    expect(second.created).toBe(true);
    expect(second.driveUuid).not.toBe(first.driveUuid);
    expect(second.copiedFrom).toBe(first.driveUuid);
    expect(second.previous).toEqual({ uuid: first.driveUuid, name: first.driveName });
    expect(second.stats.chunksSent).toBe(1);
    expect(second.stats.bytesSent).toBeLessThanOrEqual(4 * MiB);
    expect(second.chunksVerified).toBe(4);
    expect((await readDrive(emu.url, second.driveUuid, b.length)).equals(b)).toBe(true);
    // The live drive, claimed by the running server, still holds image A untouched.
    expect((await readDrive(emu.url, first.driveUuid, a.length)).equals(a)).toBe(true);
    expect((await infoOf(first.driveUuid)).meta['diskless-release']).toBe('20260101T000000Z');
    expect((await infoOf(second.driveUuid)).meta['diskless-release']).toBe('20260102T000000Z');
    expect(lines.join('\n')).toMatch(/server-side copy of the live drive: 1 of 4 chunks to send/);

    // Again: the drive already holds B, nothing is sent and nothing is created.
    const again = await run(emu.url, standby(await writeImage(b)));
    expect(again).toMatchObject({ created: false, upToDate: true, driveUuid: second.driveUuid });
    expect(again.stats.bytesSent).toBe(0);
    expect(again.chunksVerified).toBeGreaterThan(0); // a sample, chunk 0 included
    expect(await drivesNamed('fleet-boot')).toHaveLength(2);
  });

  it('without a trusted record on the live drive, sends every chunk to the new drive', async () => {
    const a = isoLike(8 * MiB);
    const first = await run(emu.url, standby(await writeImage(a)));
    // Someone wrote to the live drive since: its record is no longer trusted.
    const client = api(emu.url);
    await client.writeOnce(first.driveUuid, 0, { data: Buffer.alloc(4096, 7), gzip: false });
    await client.close();
    const b = changed(a, 4 * MiB);
    const second = await run(emu.url, standby(await writeImage(b)));
    expect(second.copiedFrom).toBeUndefined();
    expect(second.stats.chunksSent).toBe(2);
    expect((await readDrive(emu.url, second.driveUuid, b.length)).equals(b)).toBe(true);
  });

  it('refuses to finish a drive of its name that a server has claimed without a record', async () => {
    const a = isoLike(8 * MiB);
    const image = await writeImage(a);
    const first = await run(emu.url, standby(image));
    const client = api(emu.url);
    await client.writeOnce(first.driveUuid, 0, { data: Buffer.alloc(4096, 7), gzip: false });
    await client.close();
    const server = await startServer('web-held', first.driveUuid);
    const before = await infoOf(first.driveUuid);
    await expect(run(emu.url, standby(image))).rejects.toThrow(
      new RegExp(`claimed by server ${server} "web-held".*nothing was written`),
    );
    expect((await infoOf(first.driveUuid)).writeRequests).toBe(before.writeRequests);
  });

  it('keeps the previous and every claimed drive, removes older ones beyond keep-drives, and a dry run only says so', async () => {
    let image = isoLike(4 * MiB);
    const runs = [];
    for (let i = 0; i < 4; i++) {
      if (i > 0) image = changed(image, 0);
      runs.push(await run(emu.url, standby(await writeImage(image), { 'keep-drives': '9' })));
      // The first drive stays claimed by a running server throughout.
      if (i === 0) await startServer('old-timer', runs[0]?.driveUuid ?? '');
    }
    const [d0, d1, d2, d3] = runs.map((r) => r.driveUuid);
    expect(await drivesNamed('fleet-boot')).toHaveLength(4);

    image = changed(image, 0);
    const file = await writeImage(image);
    const lines: string[] = [];
    const dry = await run(emu.url, standby(file, { 'keep-drives': '1', 'dry-run': 'true' }), lines);
    // The live drive is the claimed one (d0): it is the previous drive, whatever its age.
    expect(dry.previous?.uuid).toBe(d0);
    expect(dry.removed.map((d) => d.uuid).sort()).toEqual([d1, d2, d3].sort());
    expect(lines.join('\n')).toContain(`dry run: would remove drive ${d1}`);
    expect(await drivesNamed('fleet-boot')).toHaveLength(4);

    const real = await run(emu.url, standby(file, { 'keep-drives': '2' }));
    expect(real.previous?.uuid).toBe(d0);
    // Kept: the new drive and d3 (the 2 newest), d0 (claimed and previous). Removed: d1, d2.
    expect(real.removed.map((d) => d.uuid).sort()).toEqual([d1, d2].sort());
    const left = (await drivesNamed('fleet-boot')).map((d) => d.uuid).sort();
    expect(left).toEqual([d0, d3, real.driveUuid].sort());
  });
});

describe('in-place mode', () => {
  beforeEach(async () => {
    await start();
  });

  it('refuses a drive a running server claims, naming the server, and writes with allow-claimed', async () => {
    const a = isoLike(8 * MiB);
    const first = await run(emu.url, {
      image: await writeImage(a),
      'drive-name': 'cd',
      'state-dir': state,
    });
    const server = await startServer('db-7', first.driveUuid);
    const before = await infoOf(first.driveUuid);
    const b = changed(a, 0);
    const file = await writeImage(b);
    await expect(
      run(emu.url, { image: file, 'drive-name': 'cd', 'state-dir': state, mode: 'in-place' }),
    ).rejects.toThrow(
      new RegExp(
        `claimed by server ${server} "db-7": in-place mode does not write.*nothing was written.*allow-claimed`,
      ),
    );
    expect((await infoOf(first.driveUuid)).writeRequests).toBe(before.writeRequests);

    const lines: string[] = [];
    const forced = await run(
      emu.url,
      { image: file, 'drive-name': 'cd', 'state-dir': state, 'allow-claimed': 'true' },
      lines,
    );
    expect(forced.stats.chunksSent).toBe(1);
    expect(lines.join('\n')).toContain(`claimed by server ${server} "db-7"; writing it anyway`);
    expect((await readDrive(emu.url, first.driveUuid, b.length)).equals(b)).toBe(true);
  });
});

describe('bad input', () => {
  beforeEach(async () => {
    await start();
  });

  it.each([
    [{ mode: 'blue' }, 'Input "mode": got "blue"; expected one of standby | in-place'],
    [
      { 'drive-name': '', 'drive-uuid': '00000000-0000-4000-8000-000000000001' },
      'Input "drive-uuid": got "00000000-0000-4000-8000-000000000001"; expected only with mode in-place',
    ],
    [
      { 'allow-claimed': 'true' },
      'Input "allow-claimed": got "true"; expected only with mode in-place',
    ],
    [{ 'keep-drives': '0' }, 'Input "keep-drives": got "0"'],
    [{ release: 'last tuesday' }, 'Input "release": got "last tuesday"; expected a release id'],
    [{ 'drive-name': 'x'.repeat(120) }, 'expected at most 119 characters in standby mode'],
  ])('%o is one clear line and writes nothing', async (extra, message) => {
    const image = await writeImage(isoLike(MiB));
    let error: unknown;
    try {
      options(emu.url, standby(image, extra));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain('\n');
    expect(await drivesNamed('')).toHaveLength(0);
  });
});

describe('standby mode against the recorded quirks', () => {
  beforeEach(async () => {
    await start({ quirks: RECORDED_QUIRKS });
  });

  it('copies the live drive on the server and sends only the changed chunk, verified whole', async () => {
    const a = isoLike(12 * MiB);
    const first = await run(emu.url, standby(await writeImage(a), { concurrency: '4' }));
    await startServer('web-q', first.driveUuid);
    const b = changed(a, 4 * MiB);
    const second = await run(emu.url, standby(await writeImage(b), { concurrency: '4' }));
    expect(second.copiedFrom).toBe(first.driveUuid);
    expect(second.stats.chunksSent).toBe(1);
    expect(second.chunksVerified).toBe(3);
    expect((await readDrive(emu.url, second.driveUuid, b.length)).equals(b)).toBe(true);
    const again = await run(emu.url, standby(await writeImage(b), { concurrency: '4' }));
    expect(again).toMatchObject({ upToDate: true, driveUuid: second.driveUuid });
    expect(again.stats.bytesSent).toBe(0);
  });
});
