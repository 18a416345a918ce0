// upload-drive against the emulator over real HTTP: what lands on the drive, what is
// sent, and what is refused.
import { randomBytes } from 'node:crypto';
import { appendFile, open, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { api, emulator, isoLike, MiB, readDrive, run, tmpDir, writeImage } from './helpers.js';

let emu: Emulator;
let emuDir: string;
let state: string;
beforeEach(async () => {
  emuDir = await tmpDir();
  emu = await emulator(emuDir);
  state = await tmpDir();
});
afterEach(async () => {
  await emu.close();
});

async function drives() {
  const client = api(emu.url);
  try {
    return await client.infoAll();
  } finally {
    await client.close();
  }
}

describe('upload-drive', () => {
  it('creates a shared drive by name and writes the image (zeros not sent)', async () => {
    const data = isoLike(20 * MiB);
    const image = await writeImage(data);
    const r = await run(emu.url, {
      image,
      'drive-name': 'app-boot',
      'state-dir': state,
      verify: 'full',
    });
    expect(r.created).toBe(true);
    expect(r.chunksTotal).toBe(5);
    expect(r.chunksSkipped).toBeGreaterThanOrEqual(1); // chunk 1 (4..8 MiB) is all zeros
    expect(r.chunksVerified).toBe(5);
    expect((await readDrive(emu.url, r.driveUuid, data.length)).equals(data)).toBe(true);
    const [drive] = await drives();
    expect(drive).toMatchObject({
      uuid: r.driveUuid,
      name: 'app-boot',
      claimType: 'shared',
      size: data.length,
    });
    expect(drive?.meta['diskless-sha256']).toBe(r.sha256);
  });

  it('gets the image through while 10% of writes fail with 500 and 5% of connections are cut', async () => {
    const data = isoLike(24 * MiB);
    const image = await writeImage(data);
    emu.setFaults({ errorRate: 0.1, cutRate: 0.05, seed: 7 });
    const r = await run(emu.url, {
      image,
      'drive-name': 'flaky',
      'state-dir': state,
      'chunk-size': '1M',
    });
    emu.setFaults({});
    expect(emu.stats.faults.error + emu.stats.faults.cut).toBeGreaterThan(0);
    expect(r.stats.retries).toBeGreaterThan(0);
    expect((await readDrive(emu.url, r.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('honours 429 Retry-After and 409 busy', async () => {
    const data = isoLike(8 * MiB);
    const image = await writeImage(data);
    emu.setFaults({ throttleRate: 0.2, retryAfterSeconds: 0, busyRate: 0.2, seed: 3 });
    const r = await run(emu.url, {
      image,
      'drive-name': 'busy',
      'state-dir': state,
      'chunk-size': '1M',
    });
    emu.setFaults({});
    expect(emu.stats.faults.throttle + emu.stats.faults.busy).toBeGreaterThan(0);
    expect((await readDrive(emu.url, r.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('sends nothing for an unchanged image, and only the changed region after an edit', async () => {
    const data = isoLike(32 * MiB);
    const image = await writeImage(data);
    const first = await run(emu.url, { image, 'drive-name': 'nightly', 'state-dir': state });
    const writes = emu.stats.endpoints.write ?? 0;

    const again = await run(emu.url, { image, 'drive-name': 'nightly', 'state-dir': state });
    expect(again).toMatchObject({ created: false, upToDate: true, driveUuid: first.driveUuid });
    expect(again.stats.bytesSent).toBe(0);
    expect(emu.stats.endpoints.write ?? 0).toBe(writes);

    // One 4 MiB region changes, not aligned to a chunk: at most two chunks go out.
    randomBytes(4 * MiB).copy(data, 10 * MiB + 12345);
    await writeFile(image, data);
    const edited = await run(emu.url, { image, 'drive-name': 'nightly', 'state-dir': state });
    expect(edited.upToDate).toBe(false);
    expect(edited.stats.chunksSent).toBeLessThanOrEqual(2);
    expect(edited.stats.chunksSent).toBeGreaterThanOrEqual(1);
    expect((await readDrive(emu.url, first.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('trusts its record only while nobody else wrote to the drive', async () => {
    const data = isoLike(12 * MiB);
    const image = await writeImage(data);
    const first = await run(emu.url, { image, 'drive-name': 'shared-boot', 'state-dir': state });
    const client = api(emu.url);
    await client.writeOnce(first.driveUuid, 5 * MiB, {
      data: Buffer.from('someone else'),
      gzip: false,
    });
    await client.close();
    const again = await run(emu.url, { image, 'drive-name': 'shared-boot', 'state-dir': state });
    expect(again.upToDate).toBe(false);
    expect(again.stats.chunksSent).toBe(3);
    expect((await readDrive(emu.url, first.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('resumes after the network is lost half-way, sending only what is missing', async () => {
    const data = randomBytes(16 * MiB);
    const image = await writeImage(data);
    const chunks = 16;
    // Cut every write after about half of them: the first run fails and says to re-run.
    let seen = 0;
    const timer = setInterval(() => {
      seen = emu.stats.endpoints.write ?? 0;
      if (seen >= chunks / 2) emu.setFaults({ cutRate: 1 });
    }, 1);
    emu.setFaults({ connectionBytesPerSecond: 64 * MiB });
    const lines: string[] = [];
    await expect(
      run(
        emu.url,
        { image, 'drive-name': 'resume', 'state-dir': state, 'chunk-size': '1M', concurrency: '2' },
        lines,
      ),
    ).rejects.toThrow(/run again to resume, only the missing chunks will be sent/);
    clearInterval(timer);
    emu.setFaults({});
    const second = await run(emu.url, {
      image,
      'drive-name': 'resume',
      'state-dir': state,
      'chunk-size': '1M',
      concurrency: '2',
    });
    expect(second.resumed).toBe(true);
    expect(second.stats.chunksSent).toBeLessThanOrEqual(chunks / 2 + 2);
    expect(second.stats.chunksSent + second.chunksSkipped).toBe(chunks);
    expect((await readDrive(emu.url, second.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('rewrites and reports a chunk that reads back wrong', async () => {
    const data = isoLike(8 * MiB);
    const image = await writeImage(data);
    const first = await run(emu.url, { image, 'drive-name': 'verify', 'state-dir': state });
    // Damage the drive behind the API's back: its counters, and so the record, stay as they were.
    const file = path.join(emuDir, 'drives', `${first.driveUuid}.img`);
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('bit rot'), 0, 7, 6 * MiB);
    await handle.close();
    const lines: string[] = [];
    const checked = await run(
      emu.url,
      { image, 'drive-name': 'verify', 'state-dir': state, verify: 'full' },
      lines,
    );
    expect(checked.chunksRewritten).toBe(1);
    expect(lines.join('\n')).toContain('chunks 1 differ from the image; rewriting them');
    expect((await readDrive(emu.url, first.driveUuid, data.length)).equals(data)).toBe(true);
  });

  it('stops at once, without retrying, when the image shrinks while it is sent', async () => {
    const data = randomBytes(8 * MiB);
    const image = await writeImage(data);
    emu.setFaults({ connectionBytesPerSecond: 16 * MiB });
    const cut = setInterval(() => {
      if ((emu.stats.endpoints.write ?? 0) >= 2) void truncate(image, 3 * MiB);
    }, 2);
    const lines: string[] = [];
    await expect(
      run(
        emu.url,
        {
          image,
          'drive-name': 'shrinking',
          'state-dir': state,
          'chunk-size': '1M',
          concurrency: '1',
        },
        lines,
      ),
    ).rejects.toThrow(/did not have the 1048576 bytes announced: the file being sent changed/);
    clearInterval(cut);
    emu.setFaults({});
    expect(lines.join('\n')).not.toMatch(/retry/);
    const [drive] = await drives();
    expect(drive?.meta['diskless-sha256']).toBeUndefined();
  });

  it('refuses to record an image that changed while it was being sent', async () => {
    const data = isoLike(8 * MiB);
    const image = await writeImage(data);
    emu.setFaults({ connectionBytesPerSecond: 16 * MiB });
    const touch = setInterval(() => {
      if ((emu.stats.endpoints.write ?? 0) >= 2) void appendFile(image, 'x');
    }, 2);
    await expect(
      run(emu.url, {
        image,
        'drive-name': 'moving',
        'state-dir': state,
        'chunk-size': '1M',
        concurrency: '1',
      }),
    ).rejects.toThrow('changed while it was being uploaded');
    clearInterval(touch);
    emu.setFaults({});
    const [drive] = await drives();
    expect(drive?.meta['diskless-sha256']).toBeUndefined();
  });
});
