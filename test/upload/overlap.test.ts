// The read-back that overlaps the send, against the emulator over real HTTP: chunks are
// read back while the others are still being written, whole when there is company and in
// pieces when alone; a resumed run reads back what it does not send while it sends the
// rest, and names a chunk that differs.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { api, emulator, MiB, readDrive, run, tmpDir, writeImage } from './helpers.js';

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

/** Calls `check` every millisecond until it returns true or `stop` is called. */
function watch(check: () => boolean): { stop: () => void } {
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, 1);
  return {
    stop: () => {
      clearInterval(timer);
    },
  };
}

describe('the read-back', () => {
  it('reads chunks back while the others are still being written (standby, read back whole)', async () => {
    const data = randomBytes(24 * MiB);
    const image = await writeImage(data);
    // 4 connections at 16 MiB/s each: the send takes a while.
    emu.setFaults({ connectionBytesPerSecond: 16 * MiB });
    let writesBeforeFirstRead: number | undefined;
    const reads = watch(() => {
      if ((emu.stats.endpoints.read ?? 0) === 0) return false;
      writesBeforeFirstRead = emu.stats.endpoints.write ?? 0;
      return true;
    });
    const r = await run(emu.url, {
      image,
      mode: 'standby',
      'drive-name': 'overlap',
      'state-dir': state,
      concurrency: '4',
    });
    reads.stop();
    expect(r.chunksVerified).toBe(6);
    expect(r.bytesRead).toBe(data.length);
    expect(writesBeforeFirstRead).toBeDefined();
    expect(writesBeforeFirstRead).toBeLessThan(emu.stats.endpoints.write ?? 0);
    expect((await readDrive(emu.url, r.driveUuid, data.length)).equals(data)).toBe(true);
  });
});

describe('the size of the reads', () => {
  /** A standby upload of `data` to a drive of its own; the read requests it made. */
  async function readsOf(data: Buffer, name: string): Promise<number> {
    const before = emu.stats.endpoints.read ?? 0;
    const r = await run(emu.url, {
      image: await writeImage(data),
      mode: 'standby',
      'drive-name': name,
      'state-dir': state,
    });
    const reads = (emu.stats.endpoints.read ?? 0) - before;
    expect(r.bytesRead).toBe(data.length);
    expect((await readDrive(emu.url, r.driveUuid, data.length)).equals(data)).toBe(true);
    return reads;
  }

  it('reads back whole the chunks confirmed together, and a lone chunk in pieces over several connections', async () => {
    // 9 chunks sent side by side are confirmed together: 9 reads of a whole chunk each
    // fill the link; 1 MiB pieces would cost 36 round trips for the same bytes.
    expect(await readsOf(randomBytes(36 * MiB), 'many')).toBe(9);
    // One chunk alone would be left to one connection's speed: it is read in 4 pieces.
    expect(await readsOf(randomBytes(4 * MiB), 'lone')).toBe(4);
  });
});

describe('a resumed run', () => {
  it('reads back whole what it does not send, while sending the rest, and names a chunk that differs', async () => {
    const data = randomBytes(16 * MiB);
    const image = await writeImage(data);
    const o = { image, 'drive-name': 'resumed', 'state-dir': state, 'chunk-size': '1M' };
    // The network is lost after half the writes: the first run fails, journalled.
    emu.setFaults({ connectionBytesPerSecond: 32 * MiB });
    const cut = watch(() => {
      if ((emu.stats.endpoints.write ?? 0) < 8) return false;
      emu.setFaults({ cutRate: 1 });
      return true;
    });
    await expect(run(emu.url, { ...o, concurrency: '2' })).rejects.toThrow(/run again to resume/);
    cut.stop();
    emu.setFaults({});
    const client = api(emu.url);
    const [drive] = await client.infoAll();
    await client.close();
    if (!drive) throw new Error('the first run created no drive');
    // Chunk 0 (written and journalled) rots behind the API's back: its counters stay.
    const file = await open(path.join(emuDir, 'drives', `${drive.uuid}.img`), 'r+');
    await file.write(Buffer.from('bit rot'), 0, 7, 1000);
    await file.close();
    const lines: string[] = [];
    let sendingWhileReading = false;
    const reads = watch(() => {
      if ((emu.stats.endpoints.read ?? 0) === 0) return false;
      sendingWhileReading = true;
      return true;
    });
    const writesBefore = emu.stats.endpoints.write ?? 0;
    const second = await run(emu.url, o, lines);
    reads.stop();
    expect(second.resumed).toBe(true);
    expect(second.stats.chunksSent).toBeGreaterThan(0);
    expect(second.stats.chunksSent).toBeLessThan(16);
    expect(sendingWhileReading).toBe(true);
    expect(emu.stats.endpoints.write ?? 0).toBeGreaterThan(writesBefore);
    expect(lines.join('\n')).toContain('chunks 0 differ from the image; rewriting them');
    expect(second.chunksRewritten).toBe(1);
    expect((await readDrive(emu.url, drive.uuid, data.length)).equals(data)).toBe(true);
  });
});
