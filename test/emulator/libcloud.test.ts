/**
 * A real third-party client drives the emulator: Apache libcloud's ElasticHosts driver
 * (Debian's python3-libcloud, installed by .ci/run) runs its whole create_node flow
 * (drive create, image with gunzip, polling info, servers/create), lists, reconfigures,
 * reboots, shuts down and destroys its nodes and destroys their drives; nothing is left
 * behind. Once against the plain emulator and once with the recorded quirks.
 */
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { RECORDED_QUIRKS, type Quirks } from '../../src/emulator/index.js';
import { sha256 } from '../../src/files.js';
import { run } from '../../src/process/run.js';
import { alice, call, createDrive, properties, start, type Started } from './helpers.js';

/** Debian's interpreter: python3-libcloud installs into its dist-packages. */
const PYTHON = '/usr/bin/python3';
const CLIENT = path.join(import.meta.dirname, 'libcloud', 'client.py');
const MiB = 2 ** 20;

let s: Started | undefined;
afterEach(async () => {
  await s?.stop();
  s = undefined;
});

async function libcloud(args: string[]): Promise<Record<string, unknown>> {
  const e = s?.emulator;
  if (!e) throw new Error('no emulator');
  const { stdout } = await run(
    PYTHON,
    [CLIENT, args[0] ?? '', e.url, alice.user, ...args.slice(1)],
    {
      env: { ...process.env, EMULATOR_KEY: alice.key },
      debianPackage: 'python3-libcloud',
    },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

interface NodeFacts {
  id: string;
  name: string;
  state: string;
  public_ips: string[];
  extra: Record<string, unknown>;
}

describe.each([
  ['plain', {}],
  ['recorded quirks', RECORDED_QUIRKS],
] as [string, Quirks][])('libcloud against the emulator (%s)', (_mode, quirks) => {
  it('creates nodes from a gzipped image, lists, reboots, shuts down, destroys: nothing left', async () => {
    s = await start({ quirks });
    const e = s.emulator;
    const content = Buffer.concat([Buffer.from('diskless boot image\n'), Buffer.alloc(3 * MiB, 1)]);
    const packed = gzipSync(content);
    const image = await createDrive(e, `name image.gz\nsize ${MiB}\nclaim:type shared`);
    expect((await call(e, `drives/${image}/write/0`, { body: packed })).status).toBe(204);

    const created = await libcloud(['create', image]);
    const nodes = created.created as NodeFacts[];
    expect(nodes.map((n) => [n.name, n.state])).toEqual([
      ['node-a', 'running'],
      ['node-b', 'running'],
    ]);
    const ips = nodes.map((n) => n.public_ips[0]);
    expect(new Set(ips).size).toBe(2);
    for (const ip of ips) expect(ip).toMatch(/^10\.0\.2\.\d+$/);
    // Each node's system drive: 160 GiB (libcloud's "small"), holding the gunzipped image.
    const drives = nodes.map((n) => String(n.extra['ide:0:0']));
    for (const [i, drive] of drives.entries()) {
      const info = properties((await call(e, `drives/${drive}/info`)).text);
      expect(info).toMatchObject({ size: String(160 * 2 ** 30), name: `node-${'ab'[i] ?? ''}` });
      expect(info.claimed).toBe(`${alice.user}:guest:${nodes[i]?.id ?? ''}:ide:0:0`);
      const r = await call(e, `drives/${drive}/read/0/${content.length}`);
      expect(sha256(r.body)).toBe(sha256(content));
    }
    expect((created.listed as NodeFacts[]).map((n) => n.id).sort()).toEqual(
      nodes.map((n) => n.id).sort(),
    );
    expect(created.renamed).toBe(true);
    expect(created.rebooted).toBe(true);
    const a = properties((await call(e, `servers/${nodes[0]?.id ?? ''}/info`)).text);
    expect(a.name).toBe('node-a-renamed');
    // libcloud shows the service's error header and body in its exception.
    expect(created.missing_drive).toMatch(
      quirks.notFoundAs400
        ? /X-Elastic-Error: system Drive .* could not be found/
        : /X-Elastic-Error: missing Drive .* could not be found/,
    );

    const cleanup = await libcloud(['cleanup', ...nodes.map((n) => n.id), '--', ...drives]);
    expect(cleanup).toEqual({
      shut_down: true,
      destroyed: [true],
      drives_destroyed: [true, true],
      left: [],
    });
    expect((await call(e, 'servers/list')).text).toBe('');
    expect((await call(e, 'drives/list')).text).toBe(`${image}\n`);
    expect(e.stats.endpoints.image).toBe(2);
  });
});
