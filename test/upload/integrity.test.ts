// An upload never records a torn drive as good: a journal is trusted only while the drive
// shows what it saw, a resumed run re-reads what it did not send, an up-to-date run still
// reads the image's start back, all against the emulator over real HTTP (and a real
// upload process killed with SIGKILL during its verify).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import {
  api,
  emulator,
  gate,
  killWhenHeld,
  KEY,
  MiB,
  readDrive,
  run,
  tmpDir,
  USER,
  writeImage,
} from './helpers.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli/index.js');

let emu: Emulator;
let emuDir: string;
beforeEach(async () => {
  emuDir = await tmpDir();
  emu = await emulator(emuDir);
});
afterEach(async () => {
  await emu.close();
});

/** Writes `data` over the drive through the API, as another writer would (no record). */
async function overwrite(uuid: string, data: Buffer): Promise<void> {
  const client = api(emu.url);
  try {
    for (let at = 0; at < data.length; at += MiB) {
      await client.writeOnce(uuid, at, { data: data.subarray(at, at + MiB), gzip: false });
    }
  } finally {
    await client.close();
  }
}

async function recordOf(uuid: string): Promise<string | undefined> {
  const client = api(emu.url);
  try {
    return (await client.info(uuid)).meta['diskless-sha256'];
  } finally {
    await client.close();
  }
}

describe('an interrupted upload and another writer', () => {
  it('a run killed during its verify, then image B written by another: the next run puts A back', async () => {
    const a = randomBytes(12 * MiB);
    const b = randomBytes(12 * MiB);
    const image = await writeImage(a);
    const state = await tmpDir();
    // The upload goes through a gate that holds its first read back: the kill lands in
    // the verify, before anything could be recorded.
    const reads = await gate(emu.url, (method, url) => method === 'GET' && /\/read\//.test(url));
    const child = spawn(
      process.execPath,
      [
        cli,
        'upload-drive',
        ...['--image', image, '--api-url', reads.url, '--api-user', USER],
        ...[
          '--mode',
          'in-place',
          '--drive-name',
          'torn',
          '--chunk-size',
          '1M',
          '--state-dir',
          state,
          '--verify',
          'full',
        ],
      ],
      { env: { ...process.env, DISKLESS_API_KEY: KEY }, stdio: 'ignore' },
    );
    await killWhenHeld(child, reads);
    const client = api(emu.url);
    const [drive] = await client.infoAll();
    await client.close();
    const uuid = drive?.uuid ?? '';
    expect(await recordOf(uuid)).toBeUndefined(); // killed before it recorded anything

    await overwrite(uuid, b);
    const lines: string[] = [];
    const next = await run(
      emu.url,
      { image, 'drive-name': 'torn', 'state-dir': state, 'chunk-size': '1M' },
      lines,
    );
    // Never "up to date" with nothing sent: the drive held B, and now holds A again.
    expect(next.upToDate).toBe(false);
    // Every chunk went again: sent as the journal was stale, or rewritten once read back
    // whole as not sent by this run (chunksSent counts rewrites too).
    expect(next.stats.chunksSent).toBe(12);
    expect((await readDrive(emu.url, uuid, a.length)).equals(a)).toBe(true);
    expect(await recordOf(uuid)).toBe(next.sha256);
    const again = await run(emu.url, { image, 'drive-name': 'torn', 'state-dir': state });
    expect(again.upToDate).toBe(true);
    expect(again.chunksVerified).toBeGreaterThan(0);
  });

  it('starts over when another image was recorded on the drive since the journal began', async () => {
    const a = randomBytes(8 * MiB);
    const b = randomBytes(8 * MiB);
    const imageA = await writeImage(a);
    const imageB = await writeImage(b);
    const state = await tmpDir();
    // A's run loses the network after a few writes, leaving its journal.
    let cut = false;
    const timer = setInterval(() => {
      if (!cut && (emu.stats.endpoints.write ?? 0) >= 3) {
        cut = true;
        emu.setFaults({ cutRate: 1 });
      }
    }, 1);
    emu.setFaults({ connectionBytesPerSecond: 32 * MiB });
    await expect(
      run(emu.url, {
        image: imageA,
        'drive-name': 'shared',
        'state-dir': state,
        'chunk-size': '1M',
        concurrency: '1',
      }),
    ).rejects.toThrow(/run again to resume/);
    clearInterval(timer);
    emu.setFaults({});
    // Someone else's complete upload of B (its own state) records B on the drive.
    const other = await run(emu.url, {
      image: imageB,
      'drive-name': 'shared',
      'state-dir': await tmpDir(),
      'chunk-size': '1M',
    });
    expect(await recordOf(other.driveUuid)).toBe(other.sha256);

    const lines: string[] = [];
    const resumed = await run(
      emu.url,
      { image: imageA, 'drive-name': 'shared', 'state-dir': state, 'chunk-size': '1M' },
      lines,
    );
    expect(resumed.resumed).toBe(false);
    expect(lines.join('\n')).toContain(
      "an interrupted upload's journal no longer matches the drive (another image was recorded on it since)",
    );
    expect((await readDrive(emu.url, other.driveUuid, a.length)).equals(a)).toBe(true);
    expect(await recordOf(other.driveUuid)).toBe(resumed.sha256);
  });
});

describe('an up-to-date drive', () => {
  it('still reads back a sample that includes the first 4 KiB, and rewrites what differs', async () => {
    const data = randomBytes(10 * MiB);
    const image = await writeImage(data);
    const state = await tmpDir();
    const first = await run(emu.url, { image, 'drive-name': 'boot', 'state-dir': state });
    // The drive's first 4 KiB change behind the API's back (no write counted), as the
    // real service's own 4 KiB write on a fresh drive does.
    const file = await open(path.join(emuDir, 'drives', `${first.driveUuid}.img`), 'r+');
    await file.write(Buffer.alloc(4096, 0x55), 0, 4096, 0);
    await file.close();
    const again = await run(emu.url, { image, 'drive-name': 'boot', 'state-dir': state });
    expect(again.upToDate).toBe(true);
    expect(again.chunksVerified).toBeGreaterThanOrEqual(3);
    // Only the first chunk went out again, as the rewrite of what read back wrong.
    expect([again.chunksRewritten, again.stats.chunksSent]).toEqual([1, 1]);
    expect((await readDrive(emu.url, first.driveUuid, data.length)).equals(data)).toBe(true);
    // Rewritten, so recorded again: the run after that trusts the drive.
    const third = await run(emu.url, { image, 'drive-name': 'boot', 'state-dir': state });
    expect([third.upToDate, third.chunksRewritten]).toEqual([true, 0]);
  });
});
