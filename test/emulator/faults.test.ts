import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { fairShare } from '../../src/emulator/bandwidth.js';
import type { Faults } from '../../src/emulator/index.js';
import { call, createDrive, properties, start, type Started } from './helpers.js';

let s: Started | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

const MiB = 2 ** 20;

/** Writes byte i+1 at offset i, one request after another; returns the statuses. */
async function writeBytes(st: Started, uuid: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await call(st.emulator, `drives/${uuid}/write/${i}`, { body: Buffer.from([i + 1]) });
    statuses.push(r.status);
  }
  return statuses;
}

describe('fault injection', () => {
  it('answers about errorRate of the writes with 500 system, and those write nothing', async () => {
    s = await start({ faults: { errorRate: 0.3, seed: 42 } });
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    const statuses = await writeBytes(s, uuid, 200);
    const failed = statuses.filter((c) => c === 500).length;
    expect(failed).toBeGreaterThan(40);
    expect(failed).toBeLessThan(80);
    expect(statuses.filter((c) => c !== 500 && c !== 204)).toEqual([]);
    expect(s.emulator.stats.faults.error).toBe(failed);
    // every byte acknowledged is there, every faulted one is still zero
    const data = (await call(s.emulator, `drives/${uuid}/read/0/200`)).body;
    expect([...data].map((b, i) => (b === i + 1 ? 204 : b === 0 ? 500 : -1))).toEqual(statuses);
    const info = properties((await call(s.emulator, `drives/${uuid}/info`)).text);
    expect(info['write:requests']).toBe(String(200 - failed));

    const r = await call(s.emulator, `drives/${uuid}/write/0`, { body: 'x' });
    if (r.status === 500) {
      expect(r.headers['x-elastic-error']).toMatch(/^system /);
      expect(r.text).toMatch(/^errors:system /);
    }
  });

  it('repeats the same faults for the same seed, and setFaults restarts it', async () => {
    s = await start({ faults: { errorRate: 0.5, seed: 7 } });
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    const first = await writeBytes(s, uuid, 40);
    s.emulator.setFaults({ errorRate: 0.5, seed: 7 });
    expect(await writeBytes(s, uuid, 40)).toEqual(first);
    s.emulator.setFaults({ errorRate: 0.5, seed: 8 });
    expect(await writeBytes(s, uuid, 40)).not.toEqual(first);
    s.emulator.setFaults({});
    expect(new Set(await writeBytes(s, uuid, 20))).toEqual(new Set([204]));
  });

  it('faults only writes by default, every call with faultOn all', async () => {
    s = await start({ faults: { errorRate: 1 } });
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    expect((await call(s.emulator, 'drives/list')).status).toBe(200);
    expect((await call(s.emulator, `drives/${uuid}/read/0/1`)).status).toBe(200);
    expect((await call(s.emulator, `drives/${uuid}/write`, { body: 'x' })).status).toBe(500);
    s.emulator.setFaults({ errorRate: 1, faultOn: 'all' });
    expect((await call(s.emulator, 'drives/list')).status).toBe(500);
    expect((await call(s.emulator, 'drives/create', { body: 'name e\nsize 1k' })).status).toBe(500);
    s.emulator.setFaults({});
    expect((await call(s.emulator, 'drives/list')).text).toBe(`${uuid}\n`);
  });

  it('throttles with 429 and Retry-After, and busy answers 409 busy; neither writes', async () => {
    s = await start({ faults: { throttleRate: 1, retryAfterSeconds: 7 } });
    const uuid = await createDrive(s.emulator, 'name d\nsize 1k');
    const t = await call(s.emulator, `drives/${uuid}/write`, { body: 'abc' });
    expect(t.status).toBe(429);
    expect(t.headers['retry-after']).toBe('7');
    expect(t.headers['x-elastic-error']).toMatch(/^busy /);
    s.emulator.setFaults({ busyRate: 1 });
    const b = await call(s.emulator, `drives/${uuid}/write`, { body: 'abc' });
    expect(b.status).toBe(409);
    expect(b.headers['x-elastic-error']).toMatch(/^busy /);
    expect(s.emulator.stats.faults).toMatchObject({ throttle: 1, busy: 1, error: 0, cut: 0 });
    expect((await call(s.emulator, `drives/${uuid}/read/0/3`)).body).toEqual(Buffer.alloc(3));
  });

  it('cuts the connection mid-body: the client gets a socket error, and what arrived is on the drive and counted', async () => {
    s = await start({ faults: { cutRate: 1 } });
    const uuid = await createDrive(s.emulator, 'name d\nsize 4M');
    const created = s.emulator.stats.bytesReceived;
    const body = randomBytes(2 * MiB);
    const error = await call(s.emulator, `drives/${uuid}/write`, { body }).then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error).toBeDefined();
    expect(error?.code).toMatch(/ECONNRESET|UND_ERR_SOCKET|EPIPE/);
    expect(s.emulator.stats.faults.cut).toBe(1);
    // part of the body came in (about half), not all of it
    const arrived = s.emulator.stats.bytesReceived - created;
    expect(arrived).toBeGreaterThanOrEqual(body.length / 2);
    expect(arrived).toBeLessThan(body.length);
    s.emulator.setFaults({});
    // a real drive is written as the body streams in: a cut write leaves its first part
    const read = await call(s.emulator, `drives/${uuid}/read/0/${2 * MiB}`);
    expect(read.body.subarray(0, arrived).equals(body.subarray(0, arrived))).toBe(true);
    expect(read.body.subarray(arrived).equals(Buffer.alloc(2 * MiB - arrived))).toBe(true);
    const info = properties((await call(s.emulator, `drives/${uuid}/info`)).text);
    expect(info['write:requests']).toBe('1');
    expect(info['write:bytes']).toBe(String(arrived));
  });

  it('adds latencyMs before each response', async () => {
    s = await start({ faults: { latencyMs: 200 } });
    const t0 = performance.now();
    expect((await call(s.emulator, 'drives/list')).status).toBe(200);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(200 * 1.4 + 100);
  });
});

describe('bandwidth caps', () => {
  /** Runs `n` 4 MiB writes at once, each on its own connection; returns each one's seconds. */
  async function writesAtOnce(
    st: Started,
    uuid: string,
    n: number,
    faults: Faults,
  ): Promise<number[]> {
    st.emulator.setFaults(faults);
    const body = randomBytes(4 * MiB);
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const answer = await call(st.emulator, `drives/${uuid}/write/${i * 4 * MiB}`, { body });
        return { status: answer.status, seconds: (performance.now() - t0) / 1000 };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(Array<number>(n).fill(204));
    return answers.map((a) => a.seconds);
  }

  /** Seconds until the last of `n` writes at once is answered. */
  async function writeAtOnce(st: Started, uuid: string, n: number, f: Faults): Promise<number> {
    return Math.max(...(await writesAtOnce(st, uuid, n, f)));
  }

  it('a 4 MiB body at 8 MiB/s per connection takes about 0.5 s, in and out', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 64M');
    const up = await writeAtOnce(s, uuid, 1, { connectionBytesPerSecond: 8 * MiB });
    // The cap is never exceeded; the upper bounds only tell the model from a wrong one (the
    // cap counted twice would take 1 s), with room for a loaded machine.
    expect(up).toBeGreaterThan(0.5 * 0.95);
    expect(up).toBeLessThan(0.5 * 1.8);
    const t0 = performance.now();
    const read = await call(s.emulator, `drives/${uuid}/read/0/${4 * MiB}`);
    const down = (performance.now() - t0) / 1000;
    expect(read.body.length).toBe(4 * MiB);
    expect(down).toBeGreaterThan(0.5 * 0.95);
    expect(down).toBeLessThan(0.5 * 1.8);
    expect(s.emulator.stats.bytesReceived).toBe(15 + 4 * MiB);
    expect(s.emulator.stats.bytesSent).toBeGreaterThanOrEqual(4 * MiB);
  });

  it('the per-connection cap applies to each connection, the link cap to all together', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 64M');
    // 4 connections at 8 MiB/s each, no link cap: together about 4x faster than one (one
    // cap shared by all would take 2 s)
    const parallel = await writeAtOnce(s, uuid, 4, { connectionBytesPerSecond: 8 * MiB });
    expect(parallel).toBeGreaterThan(0.5 * 0.95);
    expect(parallel).toBeLessThan(0.5 * 2.5);
    // the same 4 connections sharing a 16 MiB/s link: 16 MiB take about 1 s
    const shared = await writeAtOnce(s, uuid, 4, {
      connectionBytesPerSecond: 8 * MiB,
      linkBytesPerSecond: 16 * MiB,
    });
    expect(shared).toBeGreaterThan(1 * 0.95);
    expect(shared).toBeLessThan(1 * 1.8);
  });

  it('splits the link evenly between the transfers in progress, each at most its cap', async () => {
    s = await start();
    const uuid = await createDrive(s.emulator, 'name d\nsize 64M');
    // 6 connections capped at 8 MiB/s on a 24 MiB/s link: 4 MiB/s each, so every 4 MiB
    // write takes about 1 s. A first-come link let some run at their cap (0.5 s) and
    // left the others to finish alone.
    const each = await writesAtOnce(s, uuid, 6, {
      connectionBytesPerSecond: 8 * MiB,
      linkBytesPerSecond: 24 * MiB,
    });
    for (const seconds of each) {
      expect(seconds).toBeGreaterThan(1 * 0.9);
      expect(seconds).toBeLessThan(1 * 1.4);
    }
  });
});

describe('fair share', () => {
  it('is the link divided by the transfers in progress, never above the connection cap', () => {
    const caps = { link: 50e6, connection: 6.25e6 };
    expect(fairShare(caps, 9)).toBeCloseTo(50e6 / 9);
    expect(fairShare(caps, 4)).toBe(6.25e6);
    expect(fairShare(caps, 0)).toBe(6.25e6);
    expect(fairShare({ link: 50e6 }, 2)).toBe(25e6);
    expect(fairShare({ connection: 1e6 }, 100)).toBe(1e6);
    expect(fairShare({}, 3)).toBeUndefined();
    expect(fairShare({ link: 0, connection: 0 }, 3)).toBeUndefined();
  });
});
