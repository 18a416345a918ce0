// Benchmark, upload part: the upload-drive CLI bundle against the classic 2011 uploader,
// both over real HTTP to the emulator in its own process with 50 ms latency per request,
// 50 Mbit/s per connection and a 400 Mbit/s shared link.
//
//   npm run bench -- upload            (or: npx tsx bench/upload.ts [--small-only])
//
// The speed-up compares like with like: the baseline's job (the image onto one drive)
// done in place, the 2011 mode, which also reads a sample back. Standby mode, the
// default, writes a new drive and reads it back whole: twice the bytes on the link.
// Besides the speed-up it measures standby mode: the bytes sent for a new
// standby drive when one 4 MiB region changed while a running server claims the live
// drive (the server-side copy should leave one chunk to send), and how much of the link
// the API session of a cold upload uses: session = the step's own duration output (hash,
// lookup, create, send, verify, record and retention; not the process start). The
// emulator's link is one cap shared by request and response bodies, so in standby mode,
// which reads the new drive back whole, the bytes read back count as link use too; an
// in-place cold upload (sample verify) is measured on bytes sent alone. Each prints the
// best its round trips in series allow: every one idles the link for the latency.
//
// With --images A.iso,B.iso it uploads those files instead (cold, each to a new drive) and
// prints the time of each: bench/lean-image.ts compares its ISOs that way.
//
// The baseline is implemented here, as elastichosts-upload did it: 4 MiB chunks, each
// gzip-compressed (gzip's default level), sent one request at a time on a new
// connection (curl per chunk), no skipping.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { Client } from 'undici';
import { flag } from './lib/measure.js';
import { makeImage } from './lib/iso-like.js';
import type { UploadDriveReport } from '../src/upload/options.js';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'dist/cli/index.js');
const MiB = 2 ** 20;
const LATENCY_MS = 50;
const CONNECTION_MBIT = 50;
const LINK_MBIT = 400;
const LINK_BYTES_PER_S = (LINK_MBIT * 1e6) / 8;
const USER = randomUUID();
const KEY = randomBytes(18).toString('base64url');
const AUTH = `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`;

async function startEmulator(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      cli,
      'emulator',
      '--data',
      dataDir,
      '--account',
      `${USER}:${KEY}`,
      '--latency-ms',
      String(LATENCY_MS),
      '--connection-mbit',
      String(CONNECTION_MBIT),
      '--link-mbit',
      String(LINK_MBIT),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    if (line.startsWith('url=')) return { url: line.slice(4), child };
  }
  throw new Error('the emulator did not print its url');
}

async function api(
  url: string,
  method: string,
  p: string,
  body?: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(new URL(p, url), {
    method,
    headers: {
      authorization: AUTH,
      accept: 'application/json',
      'content-type': 'application/json',
    },
    body,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

async function baseline(url: string, image: string): Promise<{ seconds: number; bytes: number }> {
  const started = performance.now();
  const data = await readFile(image);
  const drive = await api(
    url,
    'POST',
    'drives/create',
    JSON.stringify({ name: 'baseline', size: String(data.length), 'claim:type': 'shared' }),
  );
  const gz = promisify(gzip);
  let bytes = 0;
  for (let at = 0; at < data.length; at += 4 * MiB) {
    const body = await gz(data.subarray(at, at + 4 * MiB));
    const client = new Client(new URL(url).origin); // curl: a new connection per chunk
    const res = await client.request({
      method: 'POST',
      path: `/drives/${String(drive.drive)}/write/${at}`,
      headers: {
        authorization: AUTH,
        'content-type': 'application/octet-stream',
        'content-encoding': 'gzip',
      },
      body,
    });
    await res.body.dump();
    await client.close();
    if (res.statusCode !== 204) throw new Error(`baseline write: ${res.statusCode}`);
    bytes += body.length;
  }
  return { seconds: (performance.now() - started) / 1000, bytes };
}

interface ActionRun {
  seconds: number;
  peakRssMiB: number;
  /** The CLI's --json: the step's report outputs. */
  outputs: UploadDriveReport['outputs'];
}

/** The bundled CLI with default settings; peak RSS from /proc (VmHWM) while it runs. */
async function action(
  url: string,
  image: string,
  name: string,
  state: string,
  extra: string[] = [],
): Promise<ActionRun> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      cli,
      'upload-drive',
      '--image',
      image,
      '--api-url',
      url,
      '--api-user',
      USER,
      '--drive-name',
      name,
      '--state-dir',
      state,
      '--json',
      ...extra,
    ],
    {
      env: { ...process.env, DISKLESS_API_KEY: KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let peakKiB = 0;
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((s) => {
        peakKiB = Math.max(peakKiB, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0));
      })
      .catch(() => undefined);
  }, 20);
  const [code] = (await once(child, 'exit')) as [number];
  clearInterval(poll);
  if (code !== 0) throw new Error(`upload-drive failed (${code}):\n${stderr}`);
  return {
    seconds: (performance.now() - started) / 1000,
    peakRssMiB: peakKiB / 1024,
    outputs: JSON.parse(stdout) as ActionRun['outputs'],
  };
}

/** Cold uploads of a small image whose session link use is measured. */
const COLD_SESSIONS = 5;

/**
 * The link use of a standby upload's API session: bytes sent and read back over the
 * link's capacity for the step's own duration (the process start not included).
 */
function sessionUse(run: ActionRun): number {
  const bytes = run.outputs['bytes-sent'] + run.outputs['bytes-read'];
  return bytes / (LINK_BYTES_PER_S * Number(run.outputs.duration));
}

/** The best link use of a session moving `bytes` with five round trips in series. */
function bound(bytes: number): number {
  const linkSeconds = bytes / LINK_BYTES_PER_S;
  return linkSeconds / (linkSeconds + (5 * LATENCY_MS) / 1000);
}

async function scenario(label: string, size: number): Promise<string[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-upload-'));
  const emu = await startEmulator(path.join(dir, 'emu'));
  try {
    const image = path.join(dir, 'boot.iso');
    await makeImage(image, size);
    const state = path.join(dir, 'state');
    const base = await baseline(emu.url, image);
    const inPlace = await action(emu.url, image, 'bench-in-place', state, ['--mode', 'in-place']);
    const cold = await action(emu.url, image, 'bench', state);
    const sent = cold.outputs['bytes-sent'];
    const read = cold.outputs['bytes-read'];
    // The session's link use varies by a few points from one run to the next (the
    // machine's scheduling, garbage collection): a small image is uploaded cold several
    // times, each to a new drive family, and the median is the figure.
    const sessionUses = [sessionUse(cold)];
    for (let k = 1; k < (size <= 64 * MiB ? COLD_SESSIONS : 1); k++) {
      sessionUses.push(sessionUse(await action(emu.url, image, `cold${k}`, state)));
    }
    sessionUses.sort((a, b) => a - b);
    // The fleet boots the new drive: a running server claims it from now on.
    await api(
      emu.url,
      'POST',
      'servers/create',
      JSON.stringify({
        name: 'bench-web',
        cpu: '1000',
        mem: '512',
        'ide:0:1': cold.outputs['drive-uuid'],
        'ide:0:1:media': 'cdrom',
      }),
    );
    const unchanged = await action(emu.url, image, 'bench', state);
    const handle = await open(image, 'r+');
    await handle.write(randomBytes(4 * MiB), 0, 4 * MiB, Math.floor(size / 3));
    await handle.close();
    const changed = await action(emu.url, image, 'bench', state);
    const sendSeconds = Number(cold.outputs['send-seconds']);
    const utilisation = sent / (LINK_BYTES_PER_S * sendSeconds);
    const utilisationWhole = sent / (LINK_BYTES_PER_S * cold.seconds);
    const medianUse = sessionUses[Math.floor(sessionUses.length / 2)] ?? 0;
    const medianSession = (sent + read) / (LINK_BYTES_PER_S * medianUse);
    const inPlaceSession = Number(inPlace.outputs.duration);
    const inPlaceUse = inPlace.outputs['bytes-sent'] / (LINK_BYTES_PER_S * inPlaceSession);
    const changedChunks = changed.outputs['chunks-sent'];
    return [
      `${label}: ${size / MiB} MiB image`,
      `  baseline (sequential 4 MiB gzip chunks): ${base.seconds.toFixed(2)} s, ${(base.bytes / MiB).toFixed(1)} MiB sent`,
      `  action, cold upload in place:            ${inPlace.seconds.toFixed(2)} s, ${(inPlace.outputs['bytes-sent'] / MiB).toFixed(1)} MiB sent, a sample read back (the baseline's job, verified)`,
      `  speed-up vs baseline:                    ${(base.seconds / inPlace.seconds).toFixed(1)}x (target >= 5x)`,
      `  action, cold upload (standby, default):  ${cold.seconds.toFixed(2)} s, ${(sent / MiB).toFixed(1)} MiB sent, ${cold.outputs['chunks-sent']} chunks, ${cold.outputs['chunks-retried']} retries, to a new drive then read back whole (${(base.seconds / cold.seconds).toFixed(1)}x the baseline's speed)`,
      `  link used while sending:                 ${(utilisation * 100).toFixed(0)}% of ${LINK_MBIT} Mbit/s over ${sendSeconds.toFixed(2)} s (target >= 85%)`,
      `  link used over the whole run:            ${(utilisationWhole * 100).toFixed(0)}% (process start, hashing, drive lookup, verify and record included)`,
      `  unchanged re-upload:                     ${unchanged.seconds.toFixed(2)} s, ${unchanged.outputs['bytes-sent']} bytes of chunks sent (target 0 B in < 1 s)`,
      `  (a) one 4 MiB region changed, new standby drive copied from the claimed live one on the server:`,
      `      ${changed.seconds.toFixed(2)} s, ${changedChunks} chunks, ${(changed.outputs['bytes-sent'] / MiB).toFixed(1)} MiB sent (target <= 2 chunks; without the copy: ${cold.outputs['chunks-sent']} chunks), copied from ${changed.outputs['copied-from'] === cold.outputs['drive-uuid'] ? 'the live drive' : 'nothing'}`,
      `  (b) API session of a cold upload (standby, read back whole), the median: ${medianSession.toFixed(2)} s for ${(sent / MiB).toFixed(1)} MiB sent + ${(read / MiB).toFixed(1)} MiB read back`,
      `      link use ${(medianUse * 100).toFixed(1)}% of ${LINK_MBIT} Mbit/s, median of ${sessionUses.length} cold uploads (${sessionUses.map((u) => (u * 100).toFixed(1)).join(', ')}) (target >= 80%; its five round trips in series, lookup, create, writes, reads and record, leave at most ${(bound(sent + read) * 100).toFixed(1)}%)`,
      `      in-place cold upload (the 2011 mode, sample verify): ${inPlaceSession.toFixed(2)} s, link use by bytes sent ${(inPlaceUse * 100).toFixed(0)}% (about 70% before the overlaps; its five round trips in series, lookup, create, writes, write counters and record, leave at most ${(bound(inPlace.outputs['bytes-sent']) * 100).toFixed(1)}%)`,
      `  peak RSS of the action (cold):           ${cold.peakRssMiB.toFixed(0)} MiB (target < 150 MB for 512 MiB)`,
    ];
  } finally {
    emu.child.kill('SIGTERM');
    await once(emu.child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

/** Cold uploads of real images over the same link, one new drive each. */
async function realImages(images: string[]): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-upload-'));
  const emu = await startEmulator(path.join(dir, 'emu'));
  try {
    for (const [i, image] of images.entries()) {
      const run = await action(emu.url, image, `image-${i}`, path.join(dir, `state-${i}`));
      const size = (await readFile(image)).length;
      console.log(
        `${image}: ${(size / MiB).toFixed(1)} MiB, cold upload ${run.seconds.toFixed(2)} s, ${(run.outputs['bytes-sent'] / MiB).toFixed(1)} MiB sent`,
      );
    }
  } finally {
    emu.child.kill('SIGTERM');
    await once(emu.child, 'exit');
    await rm(dir, { recursive: true, force: true });
  }
}

const images = flag('--images');
if (images) {
  console.log(
    `upload of real images: emulator with ${LATENCY_MS} ms latency, ${CONNECTION_MBIT} Mbit/s per connection, ${LINK_MBIT} Mbit/s link`,
  );
  await realImages(images.split(','));
  process.exit(0);
}
const small = process.argv.includes('--small-only');
console.log(
  `upload benchmark: emulator with ${LATENCY_MS} ms latency, ${CONNECTION_MBIT} Mbit/s per connection, ${LINK_MBIT} Mbit/s link`,
);
for (const [label, size] of [
  ['ISO-like', 36 * MiB],
  ['large', 512 * MiB],
] as const) {
  if (small && size > 36 * MiB) continue;
  for (const line of await scenario(label, size)) console.log(line);
}
