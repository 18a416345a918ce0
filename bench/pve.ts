// Benchmark, Proxmox part: the upload-pve CLI bundle (one streamed multipart request, the
// sha256 checked by the server's task) against the baseline, the upload-drive CLI bundle
// (ElasticStack chunked upload) of the same ~36 MiB ISO-like image, both cold, both to an
// emulator in its own process on the upload bench's link scenario: 50 ms latency per
// request, 50 Mbit/s per connection, a 400 Mbit/s shared link. Then the API calls a
// rollout makes per VM (read config, repoint the CD with the digest, reset and wait for
// the task, status and agent address) on that link, and config/status calls per second
// on an unthrottled emulator.
//
//   npm run bench -- pve            (or: npx tsx bench/pve.ts [--runs N])
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startPveEmulator } from '../src/emulator/pve/index.js';
import { PveApi, readConfig, repointCd, restartVm, vmState } from '../src/proxmox/index.js';
import { flag, median } from './lib/measure.js';
import { makeImage } from './lib/iso-like.js';

const root = path.resolve(import.meta.dirname, '..');
const cli = path.join(root, 'dist/cli/index.js');
const MiB = 2 ** 20;
const SIZE = 36 * MiB;
const LINK = ['--latency-ms', '50', '--connection-mbit', '50', '--link-mbit', '400'];
const RUNS = Number(flag('--runs') ?? 3);

/** Starts `diskless emulator ...` and returns the `key=value` lines it printed before serving. */
async function emulator(
  args: string[],
  keys: string[],
): Promise<{ child: ChildProcess; out: Record<string, string> }> {
  const child = spawn(process.execPath, [cli, 'emulator', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const out: Record<string, string> = {};
  for await (const line of createInterface({ input: child.stdout })) {
    const eq = line.indexOf('=');
    out[line.slice(0, eq)] = line.slice(eq + 1);
    if (keys.every((k) => k in out)) return { child, out };
  }
  throw new Error('the emulator did not print its address');
}

/** Runs the CLI bundle; seconds and peak RSS (VmHWM). */
async function timed(
  args: string[],
  env: Record<string, string>,
): Promise<{ seconds: number; rssMiB: number; out: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let peak = 0;
  const poll = setInterval(() => {
    readFile(`/proc/${child.pid}/status`, 'utf8')
      .then((s) => (peak = Math.max(peak, Number(/VmHWM:\s+(\d+)/.exec(s)?.[1] ?? 0))))
      .catch(() => undefined);
  }, 20);
  const [code] = (await once(child, 'exit')) as [number];
  clearInterval(poll);
  if (code !== 0) throw new Error(`diskless ${args[0] ?? ''} failed (${code}):\n${stderr}`);
  return { seconds: (performance.now() - started) / 1000, rssMiB: peak / 1024, out: stdout };
}

async function uploads(dir: string, image: string): Promise<void> {
  const user = randomUUID();
  const key = randomBytes(18).toString('base64url');
  const secret = randomUUID();
  const es = await emulator(
    ['--data', path.join(dir, 'es'), '--account', `${user}:${key}`, ...LINK],
    ['url'],
  );
  const pve = await emulator(
    [
      '--kind',
      'proxmox',
      '--data',
      path.join(dir, 'pve'),
      '--token',
      `ci@pve!bench=${secret}`,
      '--auth-delay-ms',
      '0',
      ...LINK,
    ],
    ['url', 'fingerprint', 'token'],
  );
  try {
    const esRuns: { seconds: number; rssMiB: number }[] = [];
    const pveRuns: { seconds: number; rssMiB: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      esRuns.push(
        await timed(
          [
            'upload-drive',
            '--image',
            image,
            '--api-url',
            es.out.url ?? '',
            '--api-user',
            user,
            '--drive-name',
            `bench-${i}`,
            '--state-dir',
            path.join(dir, `state-${i}`),
          ],
          { DISKLESS_API_KEY: key },
        ),
      );
      const run = await timed(
        [
          'upload-pve',
          '--image',
          image,
          '--api-url',
          pve.out.url ?? '',
          '--token-id',
          'ci@pve!bench',
          '--node',
          'pve',
          '--storage',
          'local',
          '--family',
          `bench${i}`,
          '--tls-fingerprint',
          pve.out.fingerprint ?? '',
          '--json',
        ],
        { DISKLESS_TOKEN_SECRET: secret },
      );
      const outputs = JSON.parse(run.out) as Record<string, unknown>;
      if (outputs.sent !== true) throw new Error('upload-pve sent nothing: not a cold upload');
      pveRuns.push(run);
    }
    const es1 = median(esRuns.map((r) => r.seconds));
    const pve1 = median(pveRuns.map((r) => r.seconds));
    const mbps = (s: number) => ((SIZE * 8) / s / 1e6).toFixed(0);
    console.log(
      `36 MiB ISO-like image, cold, median of ${RUNS}, link: 50 ms, 50 Mbit/s per connection, 400 Mbit/s shared`,
    );
    console.log(
      `  baseline upload-drive (ElasticStack, chunked, 12 connections): ${es1.toFixed(2)} s (${mbps(es1)} Mbit/s), peak RSS ${median(esRuns.map((r) => r.rssMiB)).toFixed(0)} MiB`,
    );
    console.log(
      `  upload-pve (one streamed request, sha256 checked by the task):  ${pve1.toFixed(2)} s (${mbps(pve1)} Mbit/s), peak RSS ${median(pveRuns.map((r) => r.rssMiB)).toFixed(0)} MiB`,
    );
    console.log(
      `  ratio upload-pve / baseline: ${(pve1 / es1).toFixed(2)}x the time (one connection is capped at 50 Mbit/s: the floor is ${((SIZE * 8) / 50e6).toFixed(2)} s)`,
    );
  } finally {
    es.child.kill('SIGTERM');
    pve.child.kill('SIGTERM');
    await Promise.all([once(es.child, 'exit'), once(pve.child, 'exit')]);
  }
}

async function perVm(dir: string): Promise<void> {
  const secret = randomUUID();
  const e = await startPveEmulator({
    dataDir: path.join(dir, 'per-vm'),
    tokens: [{ id: 'ci@pve!bench', secret }],
    vms: [
      {
        vmid: 101,
        name: 'a',
        config: { ide2: 'none,media=cdrom', agent: '1' },
        running: true,
        address: '10.0.0.9',
      },
    ],
    taskMs: 50,
    link: { latencyMs: 50 },
  });
  await makeImage(
    path.join(dir, 'per-vm', 'storage', 'local', 'template', 'iso', 'x-00000000.iso'),
    4096,
  );
  const api = new PveApi({
    url: e.url,
    tokenId: 'ci@pve!bench',
    secret,
    tls: { fingerprint: e.fingerprint },
  });
  const vm = { node: 'pve', vmid: 101 };
  const seconds: number[] = [];
  let requests = 0;
  for (let i = 0; i < 5; i++) {
    const before = e.stats.requests;
    const started = performance.now();
    const cfg = await readConfig(api, vm);
    await repointCd(api, vm, 'ide2', i % 2 ? 'none' : 'local:iso/x-00000000.iso', cfg.digest);
    await restartVm(api, vm, 'reset', { pollMs: 100 });
    await vmState(api, vm);
    seconds.push((performance.now() - started) / 1000);
    requests = e.stats.requests - before;
  }
  await api.close();
  await e.close();
  console.log(
    `rollout API overhead per VM (config, repoint with digest, reset + task poll, status + agent), 50 ms latency, 50 ms tasks:`,
  );
  console.log(
    `  ${median(seconds).toFixed(3)} s per VM, ${requests} requests (baseline: ${requests} x 50 ms latency = ${(requests * 0.05).toFixed(2)} s)`,
  );
}

async function rate(dir: string): Promise<void> {
  const secret = randomUUID();
  const e = await startPveEmulator({
    dataDir: path.join(dir, 'rate'),
    tokens: [{ id: 'ci@pve!bench', secret }],
    vms: [{ vmid: 101, name: 'a', config: { ide2: 'none,media=cdrom' }, running: true }],
  });
  const api = new PveApi({
    url: e.url,
    tokenId: 'ci@pve!bench',
    secret,
    tls: { fingerprint: e.fingerprint },
  });
  for (const [label, p] of [
    ['GET config', '/nodes/pve/qemu/101/config'],
    ['GET status/current', '/nodes/pve/qemu/101/status/current'],
  ] as const) {
    for (const parallel of [1, 4]) {
      const n = 1000;
      const started = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next++ < n) await api.call('GET', p);
        }),
      );
      const s = (performance.now() - started) / 1000;
      console.log(
        `  ${label.padEnd(20)} ${parallel} in flight: ${(n / s).toFixed(0)} requests/s over HTTPS (kept-alive)`,
      );
    }
  }
  await api.close();
  await e.close();
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'diskless-bench-pve-'));
try {
  const image = path.join(dir, 'boot.iso');
  await makeImage(image, SIZE);
  await uploads(dir, image);
  await perVm(dir);
  console.log('emulator Proxmox front end, no link caps, client and emulator in one process:');
  await rate(dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
