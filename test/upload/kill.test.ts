// A real upload process killed with SIGKILL half-way: the next run finishes the job,
// sending only what is missing (give or take the chunks that were in flight).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import {
  emulator,
  gate,
  KEY,
  killWhenHeld,
  MiB,
  readDrive,
  run,
  tmpDir,
  USER,
  writeImage,
} from './helpers.js';

const cli = path.resolve(import.meta.dirname, '../../dist/cli/index.js');

let emu: Emulator;
beforeEach(async () => {
  emu = await emulator();
});
afterEach(async () => {
  await emu.close();
});

describe('upload-drive killed with SIGKILL', () => {
  it.each(['in-place', 'standby'])(
    'is finished by the next run, which sends only the rest (%s)',
    async (mode) => {
      const data = randomBytes(16 * MiB);
      const image = await writeImage(data);
      const state = await tmpDir();
      const chunks = 16;
      const concurrency = 2;
      // Through a gate that passes half of the writes and holds the rest: the kill lands
      // half-way, however late this test's own timers run.
      let writes = 0;
      const half = await gate(
        emu.url,
        (method, url) => method === 'POST' && /\/write\//.test(url) && ++writes > chunks / 2,
      );
      const args = [
        'upload-drive',
        '--image',
        image,
        '--api-url',
        half.url,
        '--api-user',
        USER,
        '--mode',
        mode,
        '--drive-name',
        'killed',
        '--chunk-size',
        '1M',
        '--concurrency',
        String(concurrency),
        '--state-dir',
        state,
      ];
      const child = spawn(process.execPath, [cli, ...args], {
        env: { ...process.env, DISKLESS_API_KEY: KEY },
        stdio: 'ignore',
      });
      expect(await killWhenHeld(child, half)).toBe('SIGKILL');

      const second = await run(emu.url, {
        image,
        'drive-name': 'killed',
        'state-dir': state,
        'chunk-size': '1M',
        mode,
      });
      expect(second.resumed).toBe(true);
      expect(second.created).toBe(false);
      // About half is left; the writes in flight at the kill may be sent again.
      expect(second.stats.chunksSent).toBeLessThanOrEqual(chunks / 2 + concurrency);
      expect(second.stats.chunksSent).toBeGreaterThan(0);
      expect((await readDrive(emu.url, second.driveUuid, data.length)).equals(data)).toBe(true);
    },
  );
});
