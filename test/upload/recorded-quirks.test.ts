// upload-drive against the emulator with the real service's recorded quirks on (string
// counters, defaults left out, not-found as 400 system, the service's own first write,
// 409 to concurrent writes on one drive): the upload still lands whole and verified.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORDED_QUIRKS, type Emulator } from '../../src/emulator/index.js';
import { emulator, isoLike, MiB, readDrive, run, tmpDir, writeImage } from './helpers.js';

let emu: Emulator;
let state: string;
beforeEach(async () => {
  emu = await emulator(undefined, { quirks: RECORDED_QUIRKS });
  state = await tmpDir();
});
afterEach(async () => {
  await emu.close();
});

describe('upload-drive against the recorded quirks', () => {
  it('creates, then updates the drive by name with 4 writers (one at a time after a 409), verified', async () => {
    const first = isoLike(12 * MiB);
    const r1 = await run(emu.url, {
      image: await writeImage(first),
      'drive-name': 'app-boot',
      'state-dir': state,
      verify: 'full',
    });
    expect(r1.created).toBe(true);
    expect((await readDrive(emu.url, r1.driveUuid, first.length)).equals(first)).toBe(true);
    const second = isoLike(12 * MiB);
    const r2 = await run(emu.url, {
      image: await writeImage(second),
      'drive-name': 'app-boot',
      'state-dir': state,
      concurrency: '4',
      verify: 'full',
    });
    expect(r2.created).toBe(false);
    expect(r2.driveUuid).toBe(r1.driveUuid);
    expect((await readDrive(emu.url, r2.driveUuid, second.length)).equals(second)).toBe(true);
  });

  it('names a drive-uuid that does not exist in one clear error (400 system "could not be found")', async () => {
    const missing = '00000000-0000-4000-8000-00000000dead';
    await expect(
      run(emu.url, {
        image: await writeImage(isoLike(MiB)),
        'drive-uuid': missing,
        'state-dir': state,
      }),
    ).rejects.toThrow(new RegExp(`drive-uuid.*${missing}.*there is none with that UUID`));
  });
});
