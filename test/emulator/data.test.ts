import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { basic, alice, call, createDrive, properties, start, type Started } from './helpers.js';

let s: Started | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const MiB = 2 ** 20;

async function info(st: Started, uuid: string): Promise<Record<string, string>> {
  return properties((await call(st.emulator, `drives/${uuid}/info`)).text);
}

describe('drive data', () => {
  it('concurrent paced reads, one after another on each connection, each answer its own range (read buffers are reused)', async () => {
    s = await start();
    // Paced: answers overlap for a while, each in slices.
    const data = randomBytes(16 * MiB);
    const uuid = await createDrive(s.emulator, 'name d\nsize 16M');
    for (let at = 0; at < data.length; at += 4 * MiB) {
      const w = await call(s.emulator, `drives/${uuid}/write/${at}`, {
        body: data.subarray(at, at + 4 * MiB),
      });
      expect(w.status).toBe(204);
    }
    const st = s;
    st.emulator.setFaults({ connectionBytesPerSecond: 64 * MiB, linkBytesPerSecond: 128 * MiB });
    // Four readers, each reading range after range: a new read starts while the others'
    // answers are still going out, so a buffer given back too early would be overwritten.
    const reader = async (k: number) => {
      for (let n = 0; n < 6; n++) {
        const size = 4 * MiB - ((k * 7 + n) % 5) * 65_537;
        const offset = (k * 1_700_003 + n * 2_345_678) % (data.length - size);
        const a = await call(st.emulator, `drives/${uuid}/read/${offset}/${size}`);
        expect(a.status).toBe(200);
        expect(a.body.equals(data.subarray(offset, offset + size))).toBe(true);
      }
    };
    await Promise.all([0, 1, 2, 3].map(reader));
  });

  it('a new drive reads as zeros; raw and gzip writes read back byte for byte', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 8M');
    expect((await call(s.emulator, `drives/${uuid}/read/0/4096`)).body).toEqual(Buffer.alloc(4096));

    const raw = randomBytes(MiB + 17);
    const w1 = await call(s.emulator, `drives/${uuid}/write/12345`, {
      body: raw,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(w1.status).toBe(204);
    expect(w1.body.length).toBe(0);
    const r1 = await call(s.emulator, `drives/${uuid}/read/12345/${raw.length}`);
    expect(r1.status).toBe(200);
    expect(r1.headers['content-type']).toBe('application/octet-stream');
    expect(r1.body.equals(raw)).toBe(true);

    const plain = Buffer.concat([randomBytes(3 * MiB), Buffer.alloc(MiB, 7)]);
    const packed = gzipSync(plain);
    const w2 = await call(s.emulator, `drives/${uuid}/write/${4 * MiB}`, {
      body: packed,
      headers: { 'content-encoding': 'gzip' },
    });
    expect(w2.status).toBe(204);
    const r2 = await call(s.emulator, `drives/${uuid}/read/${4 * MiB}/${4 * MiB}`);
    expect(r2.body.equals(plain)).toBe(true);

    // write without an offset writes at 0
    expect((await call(s.emulator, `drives/${uuid}/write`, { body: 'foo' })).status).toBe(204);
    expect((await call(s.emulator, `drives/${uuid}/read/0/3`)).text).toBe('foo');

    const counters = await info(s, uuid);
    expect(counters).toMatchObject({
      'write:requests': '3',
      'write:bytes': String(raw.length + plain.length + 3), // decompressed bytes
      'read:requests': '4',
      'read:bytes': String(4096 + raw.length + 4 * MiB + 3),
    });
    expect(s.emulator.stats.bytesWritten).toBe(raw.length + plain.length + 3);
    // on the wire: the create body, then the gzip body rather than what it inflates to
    expect(s.emulator.stats.bytesReceived).toBe(14 + raw.length + packed.length + 3);
  });

  it('refuses a write past the end with 400 usage and changes nothing', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 1M');
    const first = Buffer.alloc(100, 1);
    expect(
      (await call(s.emulator, `drives/${uuid}/write/${MiB - 100}`, { body: first })).status,
    ).toBe(204);
    const before = await info(s, uuid);
    for (const [offset, body] of [
      [MiB - 50, Buffer.alloc(100, 2)],
      [MiB, Buffer.alloc(1, 2)],
      [0, gzipSync(Buffer.alloc(MiB + 1, 2))],
    ] as const) {
      const r = await call(s.emulator, `drives/${uuid}/write/${offset}`, {
        body,
        headers: offset === 0 ? { 'content-encoding': 'gzip' } : {},
      });
      expect(r.status).toBe(400);
      expect(r.headers['x-elastic-error']).toMatch(/^usage /);
    }
    expect((await call(s.emulator, `drives/${uuid}/read/${MiB - 100}/100`)).body).toEqual(first);
    const rest = (await call(s.emulator, `drives/${uuid}/read/0/${MiB - 100}`)).body;
    expect(rest.equals(Buffer.alloc(MiB - 100))).toBe(true); // toEqual on MiBs is slow
    const after = await info(s, uuid);
    expect(after['write:requests']).toBe(before['write:requests']);
    expect(after['write:bytes']).toBe(before['write:bytes']);
  });

  it('reads at most 4096 KiB at once and not past the end', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 8M');
    expect((await call(s.emulator, `drives/${uuid}/read/0/${4 * MiB}`)).body.length).toBe(4 * MiB);
    const big = await call(s.emulator, `drives/${uuid}/read/0/${4 * MiB + 1}`);
    expect(big.status).toBe(400);
    expect(big.headers['x-elastic-error']).toMatch(/^usage /);
    expect((await call(s.emulator, `drives/${uuid}/read/${8 * MiB - 10}/11`)).status).toBe(400);
    expect((await call(s.emulator, `drives/${uuid}/read/${8 * MiB - 10}/10`)).status).toBe(200);
    expect((await call(s.emulator, `drives/${uuid}/read/x/10`)).status).toBe(400);
    expect((await call(s.emulator, `drives/${uuid}/read/0/10`, { method: 'POST' })).status).toBe(
      200,
    );
  });

  it('refuses bodies over maxWriteBytes (raw or inflated), bad gzip and chunked bodies', async () => {
    s = await start({ maxWriteBytes: MiB });
    const uuid = await createDrive(s.emulator, 'name d\nsize 8M');
    const cases: [Buffer, Record<string, string>][] = [
      [Buffer.alloc(MiB + 1, 1), {}],
      [gzipSync(Buffer.alloc(2 * MiB, 1)), { 'content-encoding': 'gzip' }], // small on the wire
      [Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' }],
      [Buffer.from('abc'), { 'content-encoding': 'br' }],
    ];
    for (const [body, headers] of cases) {
      const r = await call(s.emulator, `drives/${uuid}/write`, { body, headers });
      expect(r.status).toBe(400);
      expect(r.headers['x-elastic-error']).toMatch(/^usage /);
    }
    expect(
      (await call(s.emulator, `drives/${uuid}/write`, { body: Buffer.alloc(MiB, 1) })).status,
    ).toBe(204);

    // A stream body goes out chunked (no Content-Length), which writes do not support.
    const res = await request(new URL(`drives/${uuid}/write/${MiB}`, s.emulator.url), {
      method: 'POST',
      headers: { authorization: basic(alice) },
      body: Readable.from([Buffer.from('chunk')]),
    });
    expect(res.statusCode).toBe(400);
    expect(await res.body.text()).toMatch(/Content-Length/);
    expect((await call(s.emulator, `drives/${uuid}/read/${MiB}/5`)).body).toEqual(Buffer.alloc(5));
    expect((await info(s, uuid))['write:requests']).toBe('1');
  });
});
