// What upload-drive refuses, and that a refusal creates and writes nothing.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../../src/emulator/index.js';
import { InputError } from '../../src/errors.js';
import { rejected } from '../helpers/errors.js';
import {
  api,
  emulator,
  isoLike,
  KEY,
  MiB,
  options,
  run,
  tmpDir,
  USER,
  writeImage,
} from './helpers.js';

let emu: Emulator;
let state: string;
beforeEach(async () => {
  emu = await emulator();
  state = await tmpDir();
});
afterEach(async () => {
  await emu.close();
});

/** Nothing created, set, destroyed or written on the emulator. */
function expectNothingChanged() {
  for (const endpoint of ['create', 'set', 'destroy', 'write'])
    expect(emu.stats.endpoints[endpoint] ?? 0, endpoint).toBe(0);
}

async function makeDrive(name: string, size: number, claimType = 'exclusive') {
  const client = api(emu.url);
  const drive = await client.create({ name, size: String(size), 'claim:type': claimType });
  await client.close();
  return drive;
}

describe('upload-drive refuses, changing nothing', () => {
  it('a wrong key, naming the user and never the key', async () => {
    const image = await writeImage(isoLike(MiB));
    const error = await rejected(
      Error,
      run(emu.url, {
        image,
        'drive-name': 'x',
        'state-dir': state,
        'api-key': 'wrong-key-123',
      }),
    );
    expect(error.message).toBe(
      `The API at ${emu.url} refused user ${USER} (HTTP 401 auth): check api-user and api-key`,
    );
    expect(error.message).not.toContain('wrong-key-123');
    expect(error.message).not.toContain(KEY);
    expectNothingChanged();
  });

  it('an unknown drive-uuid', async () => {
    const image = await writeImage(isoLike(MiB));
    const uuid = '0f2c4d8e-1b3a-4c5d-9e8f-a1b2c3d4e5f6';
    await expect(run(emu.url, { image, 'drive-uuid': uuid, 'state-dir': state })).rejects.toThrow(
      `Input "drive-uuid": got "${uuid}"; expected a drive of user ${USER}`,
    );
    expectNothingChanged();
  });

  it('two drives with the one name, listing both', async () => {
    const a = await makeDrive('twin', MiB);
    const b = await makeDrive('twin', MiB);
    const creates = emu.stats.endpoints.create;
    const image = await writeImage(isoLike(MiB));
    const error = await rejected(
      Error,
      run(emu.url, { image, 'drive-name': 'twin', 'state-dir': state }),
    );
    expect(error.message).toContain('2 drives are named "twin"');
    expect(error.message).toContain(a.uuid);
    expect(error.message).toContain(b.uuid);
    expect(emu.stats.endpoints.create).toBe(creates);
    expect(emu.stats.endpoints.write ?? 0).toBe(0);
  });

  it('an image larger than the drive, with both sizes and the remedy', async () => {
    const drive = await makeDrive('small', 2 * MiB, 'shared');
    const image = await writeImage(isoLike(3 * MiB));
    await expect(
      run(emu.url, { image, 'drive-uuid': drive.uuid, 'state-dir': state }),
    ).rejects.toThrow(
      new RegExp(
        `is ${3 * MiB} bytes \\(3M\\) but drive ${drive.uuid} is ${2 * MiB} bytes \\(2M\\); nothing was written\\. Resize the drive`,
      ),
    );
    expect(emu.stats.endpoints.write ?? 0).toBe(0);
    expect(emu.stats.endpoints.set ?? 0).toBe(0);
  });

  it('a drive-size smaller than the image, before creating anything', async () => {
    const image = await writeImage(isoLike(3 * MiB));
    await expect(
      run(emu.url, { image, 'drive-name': 'n', 'drive-size': '1M', 'state-dir': state }),
    ).rejects.toThrow(/nothing was written/);
    expectNothingChanged();
  });

  it('a missing, empty or directory image, before any request', async () => {
    const dir = await tmpDir();
    await writeFile(path.join(dir, 'empty.iso'), '');
    await mkdir(path.join(dir, 'adir'));
    for (const [image, why] of [
      [path.join(dir, 'none.iso'), 'it does not exist'],
      [path.join(dir, 'empty.iso'), 'it is 0 bytes'],
      [path.join(dir, 'adir'), 'not a directory'],
    ] as const) {
      await expect(run(emu.url, { image, 'drive-name': 'x', 'state-dir': state })).rejects.toThrow(
        why,
      );
    }
    expect(emu.stats.requests).toBe(0);
  });

  it('an api-url that is not a URL, or a chunk-size out of range', () => {
    const image = '/tmp/x.iso';
    const bad = (raw: Record<string, string>) => () =>
      options('http://127.0.0.1:1/', { image, 'drive-name': 'x', ...raw });
    expect(bad({ 'api-url': 'api.elastichosts.com' })).toThrow(InputError);
    expect(bad({ 'api-url': 'api.elastichosts.com' })).toThrow(
      'expected an http:// or https:// URL',
    );
    expect(bad({ 'chunk-size': '65M' })).toThrow('expected a byte size from 4K to 64M');
    expect(bad({ 'chunk-size': '0' })).toThrow('Input "chunk-size": got "0"');
    expect(bad({ 'chunk-size': '-4M' })).toThrow('Input "chunk-size": got "-4M"');
  });
});

describe('upload-drive also', () => {
  it('corrects a wrong claim type and reports it', async () => {
    const drive = await makeDrive('boot', 4 * MiB, 'exclusive');
    const image = await writeImage(isoLike(MiB));
    const lines: string[] = [];
    const r = await run(emu.url, { image, 'drive-uuid': drive.uuid, 'state-dir': state }, lines);
    expect(r.claimTypeChanged).toBe('exclusive -> shared');
    expect(lines.join('\n')).toContain('claim type changed from exclusive to shared');
    const client = api(emu.url);
    expect((await client.info(drive.uuid)).claimType).toBe('shared');
    await client.close();
  });

  it('creates a drive larger than the image when asked, to leave room to grow', async () => {
    const image = await writeImage(isoLike(MiB));
    const r = await run(emu.url, {
      image,
      'drive-name': 'roomy',
      'drive-size': '8M',
      'state-dir': state,
    });
    const client = api(emu.url);
    expect((await client.info(r.driveUuid)).size).toBe(8 * MiB);
    await client.close();
  });

  it('says what a dry run would do, writing nothing', async () => {
    const image = await writeImage(isoLike(8 * MiB));
    const lines: string[] = [];
    const r = await run(
      emu.url,
      { image, 'drive-name': 'dry', 'state-dir': state, 'dry-run': 'true' },
      lines,
    );
    expect(r).toMatchObject({ dryRun: true, created: false, chunksTotal: 2 });
    expect(lines.join('\n')).toContain('dry run: would create drive "dry" of 8M and send');
    expectNothingChanged();
  });
});
