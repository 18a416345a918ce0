/**
 * The local cloud benchmark (issue 12). Part one, always: the emulator's overhead per API
 * call, requests per second of servers/UUID/info and servers/UUID/set against 50 running
 * state-only servers, the emulator in its own process (the CLI), 8 keep-alive connections.
 * Part two, with --boots: the wall time from servers/start to the client's report on its
 * console, and to its TCP health check answering this machine at nic:0:dhcp:ip, with the
 * QEMU runner, BIOS and UEFI. It builds a release of the sample root
 * with the boot test's report unit and an ISO that stays up after its report.
 *
 *   npm run bench -- cloud [--seconds N] [--boots [--runs N]]
 *
 * --boots needs root, the sample root and the boot test's Debian packages (.ci/run).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import type { Firmware } from '../src/boot/qemu.js';
import { startEmulator } from '../src/emulator/index.js';
import { startQemuRunner } from '../src/emulator/qemu-runner.js';
import { runAction } from '../src/harness/run-action.js';
import { list } from '../src/inputs/fields.js';
import { bootReports, untilBoots } from '../test/e2e/cloud.js';
import { tcpGreeting } from '../test/emulator/tcp.js';
import { flag, median } from './lib/measure.js';

const repo = path.resolve(import.meta.dirname, '..');
const SECONDS = Number(flag('--seconds') ?? '5');
const RUNS = Number(flag('--runs') ?? '1');
const SERVERS = 50;
const CONNECTIONS = 8;
const USER = randomUUID();
const KEY = randomBytes(18).toString('base64url');
const AUTH = `Basic ${Buffer.from(`${USER}:${KEY}`).toString('base64')}`;
const NFS_SERVER = '10.0.2.100';

/** The emulator CLI (from source) in its own process; resolves with its URL. */
async function emulatorProcess(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(repo, 'src/cli/main.ts'),
      'emulator',
      '--data',
      dataDir,
      '--account',
      `${USER}:${KEY}`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  for await (const line of createInterface({ input: child.stdout })) {
    if (line.startsWith('url=')) return { url: line.slice(4), child };
  }
  throw new Error('the emulator did not print its url');
}

async function ask(pool: Pool, method: 'GET' | 'POST', p: string, body?: string) {
  const r = await pool.request({ method, path: `/${p}`, headers: { authorization: AUTH }, body });
  const text = await r.body.text();
  if (r.statusCode >= 300) throw new Error(`${method} ${p}: ${r.statusCode} ${text}`);
  return text;
}

/** Requests per second of `call` from CONNECTIONS loops over SECONDS. */
async function rate(call: (i: number) => Promise<unknown>): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let done = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (Date.now() < end) await call(done++);
    }),
  );
  return done / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function apiOverhead(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-cloud-'));
  const { url, child } = await emulatorProcess(dir);
  const pool = new Pool(url, { connections: CONNECTIONS });
  try {
    const disk = /^drive (\S+)$/m.exec(
      await ask(pool, 'POST', 'drives/create', 'name cd\nsize 1G\nclaim:type shared'),
    )?.[1];
    const servers: string[] = [];
    for (let i = 0; i < SERVERS; i++) {
      const info = await ask(
        pool,
        'POST',
        'servers/create',
        `name s${i}\ncpu 1000\nmem 512\npersistent true\nide:0:1 ${disk ?? ''}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:dhcp auto`,
      );
      servers.push(/^server (\S+)$/m.exec(info)?.[1] ?? '');
    }
    const pick = (i: number) => servers[i % servers.length] ?? '';
    const info = await rate((i) => ask(pool, 'GET', `servers/${pick(i)}/info`));
    const set = await rate((i) => ask(pool, 'POST', `servers/${pick(i)}/set`, `user:n ${i}`));
    console.log(
      `emulator API, ${SERVERS} running state-only servers, ${CONNECTIONS} connections, ${SECONDS} s each:`,
    );
    console.log(`  servers/UUID/info  ${info.toFixed(0)} requests/s`);
    console.log(`  servers/UUID/set   ${set.toFixed(0)} requests/s (each saves the server's file)`);
  } finally {
    await pool.close();
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

/** A settings file's lines, as the input of the same name reads them. */
async function setting(name: string): Promise<string> {
  const text = await readFile(path.join(repo, 'settings', name), 'utf8').catch(() => '');
  return list().parse(text).join('\n');
}

/** A release of the sample root with the report unit, and an ISO that stays up. */
async function buildClient(
  work: string,
): Promise<{ iso: string; exports: { pseudo: string; dir: string }[] }> {
  const master = execFileSync(path.join(repo, 'scripts/sample-root'), [], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const template = path.join(work, 'template');
  await cp(path.join(repo, 'template'), template, { recursive: true });
  await cp(path.join(repo, 'test/e2e/template'), template, { recursive: true });
  await writeFile(path.join(template, 'etc/diskless/boot-report.units'), '');
  const target = path.join(work, 'rootfs');
  const action = async (name: string, inputs: Record<string, string>) => {
    const run = await runAction({ actionDir: path.join(repo, 'actions', name), inputs });
    if (run.exitCode !== 0) throw new Error(`${name} failed:\n${run.main.log.join('\n')}`);
    return run.outputs;
  };
  const rootfs = await action('build-rootfs', {
    source: master,
    target,
    template,
    'state-dir': path.join(work, 'state'),
    'nfs-server': NFS_SERVER,
    'client-hostname': 'diskless-bench',
    'var-dirs': await setting('var-dirs'),
    'template-values': await setting('template-values'),
    'enable-services': 'diskless-boot-report.service',
  });
  const iso = await action('build-iso', {
    sysroot: master,
    root: rootfs.root ?? '',
    'nfs-root': `${NFS_SERVER}:${target}/current`,
    cmdline: 'panic=10 diskless.stay',
    'cache-dir': '/var/cache/diskless/initramfs',
    cache: 'local',
    output: path.join(work, 'bench.iso'),
  });
  return {
    iso: iso.iso ?? '',
    exports: [
      { pseudo: `${target}/current`, dir: rootfs.root ?? '' },
      { pseudo: path.join(master, 'usr'), dir: path.join(master, 'usr') },
      { pseudo: '/home', dir: path.join(master, 'home') },
    ],
  };
}

/** Seconds from servers/start to the console's report, and to a TCP answer from here. */
interface BootTime {
  report: number;
  reachable: number;
}

/** Retries a TCP health check of ip:port from this machine until it answers. */
async function untilAnswers(ip: string, port: number): Promise<void> {
  for (let i = 0; ; i++) {
    const answer = await tcpGreeting(ip, port, 2000).catch((error: unknown) => error as Error);
    if (typeof answer === 'string') return;
    if (i >= 300) throw answer;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** servers/start to the report, and to the server answering here, once per run. */
async function bootTimes(
  firmware: Firmware,
  client: { iso: string; exports: { pseudo: string; dir: string }[] },
  work: string,
): Promise<BootTime[]> {
  const runner = await startQemuRunner({
    work: path.join(work, `runner-${firmware}`),
    nfsServer: NFS_SERVER,
    exports: client.exports,
    firmware,
  });
  const e = await startEmulator({
    dataDir: path.join(work, `data-${firmware}`),
    accounts: [{ user: USER, key: KEY }],
    runner,
  });
  const pool = new Pool(e.url, { connections: 1 });
  try {
    const cd = await uploadCdAs(e.url, client.iso);
    const info = await ask(
      pool,
      'POST',
      'servers/create/stopped',
      `name bench\ncpu 2000\nmem 1024\npersistent true\nide:0:1 ${cd}\nide:0:1:media cdrom\nboot ide:0:1\nnic:0:model virtio\nnic:0:dhcp auto`,
    );
    const server = /^server (\S+)$/m.exec(info)?.[1] ?? '';
    const times: BootTime[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const t0 = Date.now();
      await ask(pool, 'POST', `servers/${server}/start`);
      await untilBoots(runner.consoleOf(server), run, 15 * 60_000);
      const report = (Date.now() - t0) / 1000;
      const ip = /^nic:0:dhcp:ip (\S+)$/m.exec(await ask(pool, 'GET', `servers/${server}/info`));
      await untilAnswers(ip?.[1] ?? '', 22);
      times.push({ report, reachable: (Date.now() - t0) / 1000 });
      await ask(pool, 'POST', `servers/${server}/stop`);
    }
    const reports = await bootReports(runner.consoleOf(server));
    if (reports.some((r) => r.get('system') !== 'running')) {
      console.error(`warning: a ${firmware} boot did not reach a running system`);
    }
    return times;
  } finally {
    await pool.close();
    await e.close(); // stops the machines and the NFS server
  }
}

/** The ISO on a new shared drive, written in 4 MiB chunks. */
async function uploadCdAs(url: string, iso: string): Promise<string> {
  const pool = new Pool(url, { connections: 1 });
  try {
    const data = await readFile(iso);
    const info = await ask(
      pool,
      'POST',
      'drives/create',
      `name bench.iso\nsize ${data.length}\nclaim:type shared`,
    );
    const uuid = /^drive (\S+)$/m.exec(info)?.[1] ?? '';
    const chunk = 4 * 2 ** 20;
    for (let at = 0; at < data.length; at += chunk) {
      const r = await pool.request({
        method: 'POST',
        path: `/drives/${uuid}/write/${at}`,
        headers: { authorization: AUTH },
        body: data.subarray(at, at + chunk),
      });
      await r.body.dump();
    }
    return uuid;
  } finally {
    await pool.close();
  }
}

await apiOverhead();
if (process.argv.includes('--boots')) {
  const work = await mkdtemp(path.join(os.tmpdir(), 'bench-cloud-boots-'));
  try {
    const client = await buildClient(work);
    console.log(
      `\nservers/start to the client's report, and to its TCP answer at nic:0:dhcp:ip port 22 from this machine (QEMU TCG, ${RUNS} run(s) each):`,
    );
    for (const firmware of ['bios', 'uefi'] as const) {
      const times = await bootTimes(firmware, client, work);
      const show = (key: keyof BootTime) =>
        `median ${median(times.map((t) => t[key])).toFixed(1)} s (runs: ${times.map((t) => t[key].toFixed(1)).join(', ')})`;
      console.log(`  ${firmware}: report ${show('report')}; answers ${show('reachable')}`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
} else {
  console.log(
    '\n(boot times: npm run bench -- cloud --boots; needs root and the boot test packages)',
  );
}
