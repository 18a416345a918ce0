// Unit tests of the upload's parts: no network.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile, appendFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import {
  DriveApiError,
  NetworkError,
  isTransient,
  parseRetryAfter,
} from '../../src/drive/api-error.js';
import { toDriveInfo } from '../../src/drive/api.js';
import { backoffDelay, defaultRetryPolicy, withRetry } from '../../src/drive/retry.js';
import { sha256 } from '../../src/files.js';
import { chunkBody, promising } from '../../src/upload/compress.js';
import { startProgress } from '../../src/upload/progress.js';
import { hashImage, imageSize } from '../../src/upload/image.js';
import { defaultStateDir, findJournal, openJournal } from '../../src/upload/journal.js';
import { decodeRecord, encodeRecord, trustedRecord } from '../../src/upload/record.js';
import { chunksToVerify } from '../../src/upload/verify.js';
import { tempDir } from '../helpers/temp.js';

const tmp = () => tempDir('upload-unit');

describe('compression', () => {
  it('gzips only chunks whose sample promises a gain, and only when it pays', async () => {
    const random = randomBytes(4 << 20);
    expect(await promising(random)).toBe(false);
    const text = Buffer.alloc(4 << 20, 'diskless node text ');
    expect(await promising(text)).toBe(true);
    const body = await chunkBody(text);
    expect(body.gzip).toBe(true);
    expect(body.data.length).toBeLessThan(text.length / 10);
    expect(gunzipSync(body.data).equals(text)).toBe(true);
    // a chunk that compresses well only where the sample looked is still sent raw
    const fooled = randomBytes(4 << 20);
    const raw = await chunkBody(fooled);
    expect(raw.gzip).toBe(false);
    expect(raw.data).toBe(fooled); // the same buffer, not a copy
  });
});

describe('image', () => {
  it('refuses a missing, empty or directory image', async () => {
    const dir = await tmp();
    await expect(imageSize(path.join(dir, 'none.iso'))).rejects.toThrow(/does not exist/);
    await writeFile(path.join(dir, 'empty.iso'), '');
    await expect(imageSize(path.join(dir, 'empty.iso'))).rejects.toThrow(
      /non-empty file \(it is 0 bytes\)/,
    );
    await expect(imageSize(dir)).rejects.toThrow(/not a directory/);
  });

  it('digests the image and each chunk, spotting zero and compressible chunks', async () => {
    const dir = await tmp();
    const file = path.join(dir, 'a.img');
    const text = Buffer.alloc(4096, 'some text ');
    const data = Buffer.concat([randomBytes(4096), Buffer.alloc(4096), text, randomBytes(100)]);
    await writeFile(file, data);
    const hashing = hashImage(file, data.length, 4096);
    // The sha256 comes on its own first (it names a standby drive), then with the rest.
    expect(await hashing.sha256).toBe(sha256(data));
    const d = await hashing.digests;
    expect(d.chunks).toHaveLength(4);
    expect(d.zero).toEqual([false, true, false, false]);
    // zero chunks are never sent, so never compressed
    expect(d.compressible).toEqual([false, false, true, false]);
    expect(d.chunks[1]).toBe(sha256(Buffer.alloc(4096)));
    expect(d.sha256).toBe(sha256(data));
  });
});

describe('drive record', () => {
  const record = {
    sha256: 'ab'.repeat(32),
    size: 10,
    chunkSize: 4,
    chunks: ['111111111111', '222222222222', '333333333333'],
    writeRequests: 7,
    writeBytes: 10,
  };
  const meta = Object.fromEntries(
    Object.entries(encodeRecord(record)).map(([k, v]) => [k.slice(5), v]),
  );
  const drive = (writes: number, bytes: number) =>
    toDriveInfo({
      drive: 'd',
      name: 'n',
      size: 64,
      'write:requests': writes,
      'write:bytes': bytes,
      ...encodeRecord(record),
    });

  it('round-trips through user: metadata', () => {
    expect(decodeRecord(meta)).toEqual(record);
  });

  it('is trusted only while the drive shows no writes since', () => {
    expect(trustedRecord(drive(7, 10))).toEqual(record);
    expect(trustedRecord(drive(8, 10))).toBeUndefined();
    expect(trustedRecord(drive(7, 11))).toBeUndefined();
  });

  it('is ignored when damaged', () => {
    expect(decodeRecord({ ...meta, 'diskless-chunks': '1111' })).toBeUndefined();
    expect(decodeRecord({ ...meta, 'diskless-writes': 'x' })).toBeUndefined();
  });
});

describe('resume journal', () => {
  it('lists confirmed chunks of the same image and ignores a line cut by a kill', async () => {
    const dir = await tmp();
    const header = {
      version: 2 as const,
      drive: 'd1',
      sha256: 'aa',
      chunkSize: 4,
      basis: ['', ''],
      record: '',
      writes: '1:4096',
    };
    const j = await openJournal(dir, header, false);
    await j.confirm(3);
    await j.confirm(1);
    expect((await findJournal(dir, 'd1', 'aa', 4))?.seen).toBeUndefined();
    await j.seen('3:12');
    await appendFile(path.join(dir, 'uploads', 'd1.journal'), '2'); // cut mid-line
    const found = await findJournal(dir, 'd1', 'aa', 4);
    expect(found?.done).toEqual(new Set([3, 1]));
    expect(found?.seen).toBe('3:12');
    expect(await findJournal(dir, 'd1', 'bb', 4)).toBeUndefined();
    expect(await findJournal(dir, 'd1', 'aa', 8)).toBeUndefined();
    await j.remove();
    expect(await findJournal(dir, 'd1', 'aa', 4)).toBeUndefined();
  });

  it('keeps nothing secret and is private to its user', async () => {
    const dir = await tmp();
    await openJournal(
      dir,
      { version: 2, drive: 'd2', sha256: 'aa', chunkSize: 4, basis: [], record: '', writes: '' },
      false,
    );
    const text = await readFile(path.join(dir, 'uploads', 'd2.journal'), 'utf8');
    expect(JSON.parse(text.split('\n')[0] ?? '')).toEqual({
      version: 2,
      drive: 'd2',
      sha256: 'aa',
      chunkSize: 4,
      basis: [],
      record: '',
      writes: '',
    });
  });

  it("lives under the step's env when no state-dir is given: XDG_STATE_HOME, else HOME", () => {
    expect(defaultStateDir({ XDG_STATE_HOME: '/var/lib/ci', HOME: '/home/ci' })).toBe(
      '/var/lib/ci/diskless',
    );
    expect(defaultStateDir({ HOME: '/home/ci' })).toBe('/home/ci/.local/state/diskless');
  });
});

describe('verification choice', () => {
  it('samples the image start, the first, last and two more chunks sent; full checks all', () => {
    const picked = chunksToVerify('sample', [9, 2, 5, 7, 3], 10, () => 0.5);
    expect(picked[0]).toBe(0);
    expect(picked).toContain(2);
    expect(picked.at(-1)).toBe(9);
    expect(picked.length).toBeLessThanOrEqual(5);
    expect(chunksToVerify('none', [1], 10)).toEqual([]);
    expect(chunksToVerify('full', [], 3)).toEqual([0, 1, 2]);
  });

  it('samples across the whole image when nothing was sent (an up-to-date drive)', () => {
    let r = 0;
    const picked = chunksToVerify('sample', [], 10, () => (r = (r + 0.37) % 1));
    expect(picked[0]).toBe(0);
    expect(picked.at(-1)).toBe(9);
    expect(picked.length).toBe(5);
    expect(chunksToVerify('sample', [], 1)).toEqual([0]);
  });
});

describe('retries', () => {
  it('retries transient failures only', () => {
    expect(isTransient(new NetworkError('POST /x', 'ECONNRESET', null))).toBe(true);
    for (const status of [500, 503, 429, 409])
      expect(isTransient(new DriveApiError(status, 't', '', 'r', undefined))).toBe(true);
    for (const status of [400, 401, 404])
      expect(isTransient(new DriveApiError(status, 't', '', 'r', undefined))).toBe(false);
  });

  it('backs off exponentially with jitter and honours Retry-After', () => {
    const p = defaultRetryPolicy;
    expect(backoffDelay(p, 1, new Error(), () => 1)).toBe(250);
    expect(backoffDelay(p, 3, new Error(), () => 1)).toBe(1000);
    expect(backoffDelay(p, 10, new Error(), () => 1)).toBe(p.maxDelayMs);
    expect(backoffDelay(p, 1, new Error(), () => 0)).toBe(0);
    expect(backoffDelay(p, 1, new DriveApiError(429, 'busy', '', 'r', 3000), () => 0)).toBe(3000);
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
  });

  it('gives up after the policy attempts', async () => {
    let calls = 0;
    const policy = { ...defaultRetryPolicy, attempts: 3, baseDelayMs: 1 };
    await expect(
      withRetry(() => {
        calls++;
        return Promise.reject(new DriveApiError(500, 'system', 'boom', 'r', undefined));
      }, policy),
    ).rejects.toThrow(/HTTP 500 system: boom/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      withRetry(() => {
        calls++;
        return Promise.reject(new DriveApiError(400, 'usage', 'bad', 'r', undefined));
      }, policy),
    ).rejects.toThrow();
    expect(calls).toBe(1);
  });
});

describe('compression decision', () => {
  it('does not spend CPU on a chunk that is only a little compressible', async () => {
    // 6% text and zeros in random data: gzip would save ~6%, not worth deflating 4 MiB.
    const chunk = randomBytes(4 << 20);
    chunk.fill('text ', 0, 126 * 1024);
    chunk.fill(0, chunk.length - 126 * 1024);
    expect(await promising(chunk)).toBe(false);
  });
});

describe('progress', () => {
  it('prints percent, MB/s, ETA and retries at a steady pace', () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const p = startProgress(
        'upload',
        100 * 2 ** 20,
        (l) => lines.push(l),
        () => 2,
        5_000,
      );
      vi.advanceTimersByTime(4_999);
      expect(lines).toEqual([]);
      p.add(25 * 2 ** 20);
      vi.advanceTimersByTime(1);
      p.add(25 * 2 ** 20);
      vi.advanceTimersByTime(5_000);
      p.stop();
      vi.advanceTimersByTime(20_000);
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(
        /^upload: 25% \(25\.0 of 100\.0 MiB\), [\d.]+ MB\/s, ETA \d+ s, 2 retries$/,
      );
      expect(lines[1]).toMatch(/^upload: 50% \(50\.0 of 100\.0 MiB\)/);
    } finally {
      vi.useRealTimers();
    }
  });
});
